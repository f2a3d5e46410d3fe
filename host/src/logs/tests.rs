use super::*;

fn line(text: &str, time: &str) -> Line {
    Line { stream: Stream::Stdout, time: Some(time.into()), text: text.into(), service: None }
}

#[test]
fn json_lines_are_read_for_level_message_and_time() {
    let e = Entry::read(line(r#"{"level":"WARNING","msg":"disk low","ts":1764000000}"#, "2026-11-24T10:00:00Z"));
    assert_eq!((e.level, e.message.as_str()), (Some(Level::Warn), "disk low"));
    assert_eq!(e.time.unwrap().timestamp(), 1_764_000_000, "the line's own time wins");
    let pino = Entry::read(line(r#"{"level":50,"time":1764000000123,"msg":"boom"}"#, "2026-11-24T10:00:00Z"));
    assert_eq!((pino.level, pino.time.unwrap().timestamp_millis()), (Some(Level::Error), 1_764_000_000_123));
    let plain = Entry::read(line("listening on 8080", "2026-11-24T10:00:00.5Z"));
    assert_eq!((plain.level, plain.message.as_str()), (None, "listening on 8080"));
    assert_eq!(plain.time.unwrap().timestamp_millis(), 1_795_514_400_500, "the engine's time");
    let not_json = Entry::read(line("{not json", "2026-11-24T10:00:00Z"));
    assert_eq!(not_json.message, "{not json");
}

#[test]
fn filters_keep_level_and_above_within_the_window_and_the_last_tail() {
    let lines = vec![
        line(r#"{"level":"info","msg":"a","time":"2026-11-24T10:00:01Z"}"#, "2026-11-24T10:00:01Z"),
        line(r#"{"level":"error","msg":"b","time":"2026-11-24T10:00:02Z"}"#, "2026-11-24T10:00:02Z"),
        line("plain c", "2026-11-24T10:00:03Z"),
        line(r#"{"level":"fatal","msg":"d","time":"2026-11-24T10:00:04Z"}"#, "2026-11-24T10:00:04Z"),
    ];
    let at = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().to_utc());
    let messages = |filter: &Filter, tail| -> Vec<String> {
        search(lines.clone(), filter, tail).into_iter().map(|e| e.message).collect()
    };
    assert_eq!(messages(&Filter { level: Some(Level::Error), ..Default::default() }, 10), ["b", "d"]);
    assert_eq!(messages(&Filter { level: Some(Level::Error), ..Default::default() }, 1), ["d"]);
    let window = Filter { since: at("2026-11-24T10:00:02Z"), until: at("2026-11-24T10:00:03Z"), ..Default::default() };
    assert_eq!(messages(&window, 10), ["b", "plain c"]);
    assert_eq!(messages(&Filter { contains: Some("PLAIN".into()), ..Default::default() }, 10), ["plain c"]);
}
