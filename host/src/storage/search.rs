//! Turning what a user typed into a safe FTS5 query.
//!
//! FTS5 has its own query language (`AND`, `NEAR`, `*`, parentheses, column filters), and
//! a stray quote or bracket in it is a syntax error. Users type words, not queries, so each
//! whitespace-separated term becomes a quoted FTS5 string, which FTS5 treats as plain text;
//! the terms must all match (FTS5's implicit AND), and the last one matches as a prefix so
//! results narrow while the user is still typing.

/// The FTS5 query for `input`, or `None` when there is nothing to search for (list all).
///
/// Terms without a letter or digit are dropped: the tokenizer would find no token in
/// them, and an empty phrase would make the whole query match nothing.
pub(super) fn fts_query(input: &str) -> Option<String> {
    let terms: Vec<&str> = input
        .split_whitespace()
        .filter(|term| term.chars().any(char::is_alphanumeric))
        .collect();
    let (last, rest) = terms.split_last()?;
    let mut query = String::new();
    for term in rest {
        push_quoted(&mut query, term);
        query.push(' ');
    }
    push_quoted(&mut query, last);
    query.push('*');
    Some(query)
}

/// The PostgreSQL `tsquery` for `input` (for `to_tsquery('simple', ...)`), or `None` to
/// list all: the same rule as [`fts_query`]. Every word is cut to its letters and digits
/// (how the `simple` parser splits text anyway), so nothing typed can reach the tsquery
/// syntax (`&`, `|`, `!`, `:`, parentheses); the words must all match, the last as a prefix.
pub(super) fn pg_tsquery(input: &str) -> Option<String> {
    let words: Vec<String> = input
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    let (last, rest) = words.split_last()?;
    let mut query = String::new();
    for word in rest {
        query.push_str(word);
        query.push_str(" & ");
    }
    query.push_str(last);
    query.push_str(":*");
    Some(query)
}

/// Appends `term` as an FTS5 string: in double quotes, inner double quotes doubled.
fn push_quoted(query: &mut String, term: &str) {
    query.push('"');
    query.push_str(&term.replace('"', "\"\""));
    query.push('"');
}

#[cfg(test)]
mod tests {
    use super::{fts_query, pg_tsquery};

    #[test]
    fn blank_input_means_no_filter() {
        assert_eq!(fts_query(""), None);
        assert_eq!(fts_query(" \t\n "), None);
        assert_eq!(fts_query("\" ; ( )"), None);
    }

    #[test]
    fn terms_are_quoted_and_last_is_a_prefix() {
        assert_eq!(fts_query("hello"), Some(r#""hello"*"#.into()));
        assert_eq!(
            fts_query("  hello   wor "),
            Some(r#""hello" "wor"*"#.into())
        );
    }

    #[test]
    fn postgres_queries_hold_only_words() {
        assert_eq!(pg_tsquery(" \t "), None);
        assert_eq!(pg_tsquery("!&|():*"), None);
        assert_eq!(pg_tsquery("Hello wor"), Some("hello & wor:*".into()));
        assert_eq!(
            pg_tsquery("a&b | say\"hi\":*"),
            Some("a & b & say & hi:*".into())
        );
    }

    #[test]
    fn operators_and_quotes_stay_plain_text() {
        assert_eq!(
            fts_query(r#"a AND OR ( say"hi""#),
            Some(r#""a" "AND" "OR" "say""hi"""*"#.into())
        );
    }
}
