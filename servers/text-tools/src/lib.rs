//! The sample catalog's component: three text tools, pure functions of their
//! arguments, so they run in a sandbox with nothing granted.

wit_bindgen::generate!({ world: "text-tools", path: "wit" });

struct TextTools;

impl Guest for TextTools {
    fn count(text: String) -> Counts {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Counts {
            characters: clamp(text.chars().count()),
            words: clamp(text.split_whitespace().count()),
            lines: clamp(text.lines().count()),
        }
    }

    fn convert_case(text: String, to: LetterCase) -> String {
        let words = || text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase);
        match to {
            LetterCase::Lower => text.to_lowercase(),
            LetterCase::Upper => text.to_uppercase(),
            LetterCase::Title => words().map(|w| capitalised(&w)).collect::<Vec<_>>().join(" "),
            LetterCase::Kebab => words().collect::<Vec<_>>().join("-"),
            LetterCase::Snake => words().collect::<Vec<_>>().join("_"),
        }
    }

    fn find_lines(text: String, pattern: String, ignore_case: Option<bool>) -> Result<Vec<Found>, String> {
        if pattern.is_empty() {
            return Err("pattern: give the text to look for".into());
        }
        let fold = |s: &str| if ignore_case == Some(true) { s.to_lowercase() } else { s.to_string() };
        let wanted = fold(&pattern);
        let found = text.lines().enumerate().filter(|(_, line)| fold(line).contains(&wanted));
        Ok(found.map(|(i, line)| Found { line: u32::try_from(i + 1).unwrap_or(u32::MAX), text: line.into() }).collect())
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

export!(TextTools);
