//! MQTT topic patterns with a named level: `factory/+machine/data` matches
//! `factory/sew-01/data` and names machine `sew-01`. Pure.

/// One level of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Exact(String),
    /// `+` or `+name`; `Some("machine")` captures the machine id.
    Any(Option<String>),
    /// `#`: this level and everything below (last level only).
    Rest,
}

/// A parsed topic filter, possibly naming levels (`+machine`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern {
    levels: Vec<Level>,
}

impl TopicPattern {
    /// Parses `a/+machine/b`, `a/+/b`, `a/#`. Errors say what is wrong.
    pub fn parse(s: &str) -> Result<TopicPattern, String> {
        if s.is_empty() {
            return Err("empty topic".into());
        }
        let parts: Vec<&str> = s.split('/').collect();
        let mut levels = Vec::with_capacity(parts.len());
        let mut captures = 0;
        for (i, p) in parts.iter().enumerate() {
            if *p == "#" {
                if i + 1 != parts.len() {
                    return Err(format!("{s:?}: `#` must be the last level"));
                }
                levels.push(Level::Rest);
            } else if let Some(name) = p.strip_prefix('+') {
                if name.contains(['+', '#']) {
                    return Err(format!("{s:?}: bad level {p:?}"));
                }
                if name == "machine" {
                    captures += 1;
                }
                levels.push(Level::Any((!name.is_empty()).then(|| name.to_string())));
            } else if p.contains(['+', '#']) {
                return Err(format!("{s:?}: wildcards must fill a whole level ({p:?})"));
            } else {
                levels.push(Level::Exact(p.to_string()));
            }
        }
        if captures > 1 {
            return Err(format!("{s:?}: more than one `+machine` level"));
        }
        Ok(TopicPattern { levels })
    }

    /// True when a level is `+machine`.
    pub fn captures_machine(&self) -> bool {
        self.levels
            .iter()
            .any(|l| matches!(l, Level::Any(Some(n)) if n == "machine"))
    }

    /// The plain MQTT filter to subscribe with (`+name` becomes `+`).
    pub fn filter(&self) -> String {
        self.levels
            .iter()
            .map(|l| match l {
                Level::Exact(s) => s.as_str(),
                Level::Any(_) => "+",
                Level::Rest => "#",
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Matches `topic`: `None` when it does not match, else the `+machine` level if any.
    pub fn matches<'t>(&self, topic: &'t str) -> Option<Option<&'t str>> {
        let mut machine = None;
        let mut parts = topic.split('/');
        for (i, level) in self.levels.iter().enumerate() {
            match level {
                Level::Rest => {
                    // `#` does not match `$SYS/...` from the first level (MQTT 4.7.2).
                    if i == 0 && topic.starts_with('$') {
                        return None;
                    }
                    return Some(machine);
                }
                Level::Exact(e) => {
                    if parts.next()? != e {
                        return None;
                    }
                }
                Level::Any(name) => {
                    let p = parts.next()?;
                    if i == 0 && p.starts_with('$') {
                        return None;
                    }
                    if name.as_deref() == Some("machine") {
                        if p.is_empty() {
                            return None;
                        }
                        machine = Some(p);
                    }
                }
            }
        }
        match parts.next() {
            None => Some(machine),
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_machine_level() {
        let p = TopicPattern::parse("factory/+machine/data").unwrap();
        assert_eq!(p.filter(), "factory/+/data");
        assert_eq!(p.matches("factory/sew-01/data"), Some(Some("sew-01")));
        assert_eq!(p.matches("factory/sew-01/other"), None);
        assert_eq!(p.matches("factory/sew-01/data/x"), None);
        assert_eq!(p.matches("factory//data"), None);
        assert_eq!(p.matches("factory/data"), None);
    }

    #[test]
    fn plain_wildcards() {
        let p = TopicPattern::parse("a/+/b/#").unwrap();
        assert_eq!(p.matches("a/x/b"), Some(None));
        assert_eq!(p.matches("a/x/b/c/d"), Some(None));
        assert_eq!(p.matches("a/x/c"), None);
        let all = TopicPattern::parse("#").unwrap();
        assert_eq!(all.matches("$SYS/broker"), None);
        assert_eq!(all.matches("x"), Some(None));
        let exact = TopicPattern::parse("m/iron-3").unwrap();
        assert_eq!(exact.matches("m/iron-3"), Some(None));
        assert_eq!(exact.matches("m/iron-4"), None);
    }

    #[test]
    fn refuses_bad_patterns() {
        assert!(TopicPattern::parse("a/#/b").is_err());
        assert!(TopicPattern::parse("a/b+/c").is_err());
        assert!(TopicPattern::parse("+machine/+machine").is_err());
        assert!(TopicPattern::parse("").is_err());
    }
}
