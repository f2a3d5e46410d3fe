//! A tool component for the tests: plain exported functions over records,
//! enums, options and results (wassette's convention), and two that misbehave
//! (`spin` loops, `hog` asks for memory) so the host's limits can be seen,
//! and two that reach for what a sandbox may grant (a file, a variable).

wit_bindgen::generate!({ world: "tools", path: "wit" });

struct Tools;

impl Guest for Tools {
    fn add(a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }

    fn echo(text: String) -> String {
        text
    }

    fn fetch(url: String) -> Result<String, String> {
        use wasip2::http::outgoing_handler;
        use wasip2::http::types::{Fields, OutgoingRequest, Scheme};
        let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
        let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
        let request = OutgoingRequest::new(Fields::new());
        request.set_scheme(Some(&Scheme::Http)).map_err(|_| "scheme")?;
        request.set_authority(Some(authority)).map_err(|_| "authority")?;
        request.set_path_with_query(Some(&path)).map_err(|_| "path")?;
        let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
        pending.subscribe().block();
        let response = pending.get().ok_or("no answer")?.map_err(|_| "taken")?.map_err(|e| format!("{e:?}"))?;
        let body = response.consume().map_err(|_| "no body")?;
        let stream = body.stream().map_err(|_| "no stream")?;
        let mut bytes = Vec::new();
        while let Ok(chunk) = stream.blocking_read(64 * 1024) {
            bytes.extend_from_slice(&chunk);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn greet(name: String, excited: Option<bool>) -> String {
        let mark = if excited == Some(true) { "!" } else { "." };
        format!("Hello, {name}{mark}")
    }

    fn distance(a: Point, b: Point) -> f64 {
        let (dx, dy) = (f64::from(a.x - b.x), f64::from(a.y - b.y));
        (dx * dx + dy * dy).sqrt()
    }

    fn convert(degrees: f64, to: Unit) -> f64 {
        match to {
            Unit::Celsius => (degrees - 32.0) * 5.0 / 9.0,
            Unit::Fahrenheit => degrees * 9.0 / 5.0 + 32.0,
        }
    }

    fn split_words(text: String) -> Result<Vec<String>, String> {
        if text.trim().is_empty() {
            return Err("nothing to split".into());
        }
        Ok(text.split_whitespace().map(String::from).collect())
    }

    fn spin(rounds: u64) -> u64 {
        let mut n = 0u64;
        while n < rounds {
            n = std::hint::black_box(n + 1);
        }
        n
    }

    fn read_file(path: String) -> Result<String, String> {
        std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))
    }

    fn env_var(name: String) -> Option<String> {
        std::env::var(name).ok()
    }

    fn hog(megabytes: u32) -> u32 {
        let held: Vec<u8> = vec![1; megabytes as usize * (1 << 20)];
        std::hint::black_box(&held).len() as u32 >> 20
    }
}

export!(Tools);
