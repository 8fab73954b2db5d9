//! Whisper's byte-level BPE vocabulary: token ids ↔ text, and the special tokens.
//!
//! The `tokenizers` crate does not fit a wasm component (regex engines, threads), and
//! Whisper needs little of it: decoding is a table lookup (each token is a string of
//! GPT-2 "byte characters", one per byte), and encoding is only needed for the short
//! initial prompt and the list of non-speech tokens, where a plain BPE merge loop over
//! `tokenizer.json`'s merges is fast enough.

use std::collections::HashMap;

/// Why the vocabulary could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Format(String),
}

/// Ids of Whisper's special tokens in one vocabulary.
#[derive(Clone, Debug)]
pub struct Specials {
    pub eot: u32,
    pub sot: u32,
    pub translate: u32,
    pub transcribe: u32,
    pub sot_lm: u32,
    pub sot_prev: u32,
    pub no_speech: u32,
    pub no_timestamps: u32,
    /// `<|0.00|>`; every later id is a timestamp in 20 ms steps.
    pub timestamp_begin: u32,
}

/// The vocabulary of one model.
pub struct Tokenizer {
    tokens: Vec<String>,
    ids: HashMap<String, u32>,
    /// BPE merge ranks, `(left, right) → rank`; empty when `tokenizer.json` is absent.
    merges: HashMap<(String, String), usize>,
    pub specials: Specials,
    /// Language code → token id (`<|en|>` → …), in the model's order.
    pub languages: Vec<(String, u32)>,
}

impl Tokenizer {
    /// Builds the tokenizer from `vocabulary.txt` (one token per line, line number = id)
    /// and, optionally, the text of `tokenizer.json` (for its BPE merges).
    pub fn new(vocabulary: &str, tokenizer_json: Option<&str>) -> Result<Self, TokenizerError> {
        let tokens: Vec<String> = vocabulary.lines().map(str::to_owned).collect();
        let ids: HashMap<String, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let find = |names: &[&str]| -> Result<u32, TokenizerError> {
            names
                .iter()
                .find_map(|n| ids.get(*n).copied())
                .ok_or_else(|| {
                    TokenizerError::Format(format!(
                        "vocabulary.txt has no {} token (is it a Whisper vocabulary?)",
                        names[0]
                    ))
                })
        };
        let specials = Specials {
            eot: find(&["<|endoftext|>"])?,
            sot: find(&["<|startoftranscript|>"])?,
            translate: find(&["<|translate|>"])?,
            transcribe: find(&["<|transcribe|>"])?,
            sot_lm: find(&["<|startoflm|>"])?,
            sot_prev: find(&["<|startofprev|>"])?,
            no_speech: find(&["<|nospeech|>", "<|nocaptions|>"])?,
            no_timestamps: find(&["<|notimestamps|>"])?,
            timestamp_begin: find(&["<|0.00|>"])?,
        };
        let languages = (specials.sot + 1..specials.translate)
            .filter_map(|id| {
                let t = &tokens[id as usize];
                let code = t.strip_prefix("<|")?.strip_suffix("|>")?;
                Some((code.to_owned(), id))
            })
            .collect();
        let merges = match tokenizer_json {
            Some(json) => parse_merges(json)?,
            None => HashMap::new(),
        };
        Ok(Self {
            tokens,
            ids,
            merges,
            specials,
            languages,
        })
    }

    /// Number of tokens in the vocabulary.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The id of `<|code|>`, if the model knows that language.
    pub fn language_token(&self, code: &str) -> Option<u32> {
        self.languages
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, id)| *id)
    }

    /// Whether `id` is a timestamp token.
    pub fn is_timestamp(&self, id: u32) -> bool {
        id >= self.specials.timestamp_begin
    }

    /// The text of the ordinary (non-special) tokens among `ids`.
    pub fn decode(&self, ids: &[u32]) -> String {
        let byte_of = byte_decoder();
        let mut bytes = Vec::new();
        for &id in ids {
            if id >= self.specials.eot {
                continue;
            }
            if let Some(token) = self.tokens.get(id as usize) {
                bytes.extend(token.chars().filter_map(|c| byte_of.get(&c).copied()));
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Token ids of `text` (GPT-2 pre-tokenisation, then BPE). Without merges each
    /// piece is looked up whole, else spelled byte by byte (valid ids, if not the
    /// model's preferred split).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let to_char = byte_encoder();
        let mut out = Vec::new();
        for piece in pre_tokenize(text) {
            let symbols: Vec<String> = piece
                .bytes()
                .map(|b| to_char[b as usize].to_string())
                .collect();
            let whole: String = symbols.concat();
            if let Some(&id) = self.ids.get(&whole) {
                out.push(id);
                continue;
            }
            for symbol in self.merge(symbols) {
                match self.ids.get(&symbol) {
                    Some(&id) => out.push(id),
                    None => out.extend(
                        symbol
                            .chars()
                            .filter_map(|c| self.ids.get(&c.to_string()).copied()),
                    ),
                }
            }
        }
        out
    }

    /// Applies the BPE merges to one pre-tokenised piece, lowest rank first.
    fn merge(&self, mut symbols: Vec<String>) -> Vec<String> {
        loop {
            let best = symbols
                .windows(2)
                .enumerate()
                .filter_map(|(i, pair)| {
                    self.merges
                        .get(&(pair[0].clone(), pair[1].clone()))
                        .map(|rank| (*rank, i))
                })
                .min();
            let Some((_, i)) = best else {
                return symbols;
            };
            let right = symbols.remove(i + 1);
            symbols[i].push_str(&right);
        }
    }

    /// Tokens that are never speech: the symbols openai-whisper suppresses by default
    /// (`suppress_tokens = "-1"`), plus the task and start tokens.
    pub fn non_speech_tokens(&self) -> Vec<u32> {
        let mut symbols: Vec<String> = "\"#()*+/:;<=>@[\\]^_`{|}~「」『』"
            .chars()
            .map(String::from)
            .collect();
        symbols.extend(
            "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪"
                .split(' ')
                .map(String::from),
        );
        let miscellaneous = "♩♪♫♬♭♮♯";
        let mut result = Vec::new();
        for id in [self.encode(" -")[0], self.encode(" '")[0]] {
            result.push(id);
        }
        for symbol in &symbols {
            for tokens in [self.encode(symbol), self.encode(&format!(" {symbol}"))] {
                if tokens.len() == 1 || miscellaneous.contains(symbol.as_str()) {
                    result.push(tokens[0]);
                }
            }
        }
        for c in miscellaneous.chars() {
            for tokens in [self.encode(&c.to_string()), self.encode(&format!(" {c}"))] {
                if let Some(&first) = tokens.first() {
                    result.push(first);
                }
            }
        }
        let s = &self.specials;
        result.extend([
            s.translate,
            s.transcribe,
            s.sot,
            s.sot_prev,
            s.sot_lm,
            s.no_speech,
        ]);
        result.sort_unstable();
        result.dedup();
        result
    }
}

/// Reads `model.merges` of a Hugging Face `tokenizer.json` ("a b" strings or pairs).
fn parse_merges(json: &str) -> Result<HashMap<(String, String), usize>, TokenizerError> {
    #[derive(serde::Deserialize)]
    struct File {
        model: Model,
    }
    #[derive(serde::Deserialize)]
    struct Model {
        #[serde(default)]
        merges: Vec<Merge>,
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Merge {
        Joined(String),
        Pair(String, String),
    }
    let file: File = serde_json::from_str(json)
        .map_err(|e| TokenizerError::Format(format!("tokenizer.json: {e}")))?;
    Ok(file
        .model
        .merges
        .into_iter()
        .enumerate()
        .filter_map(|(rank, m)| {
            let pair = match m {
                Merge::Pair(a, b) => (a, b),
                Merge::Joined(s) => {
                    let (a, b) = s.split_once(' ')?;
                    (a.to_owned(), b.to_owned())
                }
            };
            Some((pair, rank))
        })
        .collect())
}

/// GPT-2's reversible byte → printable character table.
fn byte_encoder() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        table[b as usize] = if printable {
            char::from(b)
        } else {
            extra += 1;
            char::from_u32(255 + extra).expect("valid code point")
        };
    }
    table
}

fn byte_decoder() -> HashMap<char, u8> {
    byte_encoder()
        .iter()
        .enumerate()
        .map(|(b, c)| (*c, b as u8))
        .collect()
}

/// Splits text as GPT-2's pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` does.
fn pre_tokenize(text: &str) -> Vec<&str> {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Letter,
        Number,
        Space,
        Other,
    }
    let class = |c: char| {
        if c.is_alphabetic() {
            Class::Letter
        } else if c.is_numeric() {
            Class::Number
        } else if c.is_whitespace() {
            Class::Space
        } else {
            Class::Other
        }
    };
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let end_of = |i: usize| chars.get(i).map_or(text.len(), |(p, _)| *p);
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let start = chars[i].0;
        let rest = &text[start..];
        if let Some(c) = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]
            .iter()
            .find(|c| rest.starts_with(**c))
        {
            pieces.push(&text[start..start + c.len()]);
            i += c.chars().count();
            continue;
        }
        let c = chars[i].1;
        // " ?X+" for letters, numbers and other symbols.
        let (lead, first) =
            if c == ' ' && i + 1 < chars.len() && class(chars[i + 1].1) != Class::Space {
                (1, class(chars[i + 1].1))
            } else {
                (0, class(c))
            };
        let mut j = i + lead;
        if first == Class::Space {
            while j < chars.len() && class(chars[j].1) == Class::Space {
                j += 1;
            }
            // `\s+(?!\S)`: leave the last space for the next word.
            if j < chars.len() && j - i > 1 {
                j -= 1;
            }
        } else {
            while j < chars.len() && class(chars[j].1) == first {
                j += 1;
            }
        }
        pieces.push(&text[start..end_of(j)]);
        i = j;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_tokenizer_splits_like_gpt2() {
        assert_eq!(
            pre_tokenize("Hello world's  2024 test!!"),
            vec!["Hello", " world", "'s", " ", " 2024", " test", "!!"]
        );
        assert_eq!(pre_tokenize(" a\n\nb"), vec![" a", "\n", "\n", "b"]);
    }

    #[test]
    fn byte_table_round_trips() {
        let enc = byte_encoder();
        let dec = byte_decoder();
        assert_eq!(dec.len(), 256);
        assert_eq!(enc[b' ' as usize], 'Ġ');
        for b in 0..=255u8 {
            assert_eq!(dec[&enc[b as usize]], b);
        }
    }

    fn toy() -> Tokenizer {
        let mut vocab: Vec<String> = byte_encoder().iter().map(|c| c.to_string()).collect();
        vocab.extend(["he", "ll", "hell", "hello", "Ġw", "Ġwo"].map(String::from));
        vocab.extend(
            [
                "<|endoftext|>",
                "<|startoftranscript|>",
                "<|en|>",
                "<|de|>",
                "<|translate|>",
                "<|transcribe|>",
                "<|startoflm|>",
                "<|startofprev|>",
                "<|nocaptions|>",
                "<|notimestamps|>",
                "<|0.00|>",
                "<|0.02|>",
            ]
            .map(String::from),
        );
        let json = r#"{"model":{"merges":["h e","l l","he ll","hell o","Ġ w",["Ġw","o"]]}}"#;
        Tokenizer::new(&vocab.join("\n"), Some(json)).unwrap()
    }

    #[test]
    fn encode_applies_merges_and_decode_inverts_it() {
        let t = toy();
        let ids = t.encode("hello wow");
        let texts: Vec<&str> = ids.iter().map(|&i| t.tokens[i as usize].as_str()).collect();
        assert_eq!(texts, vec!["hello", "Ġwo", "w"]);
        assert_eq!(t.decode(&ids), "hello wow");
        assert_eq!(t.languages, vec![("en".into(), 264), ("de".into(), 265)]);
        assert_eq!(t.specials.no_speech, 270);
        // Special tokens never reach the text.
        assert_eq!(
            t.decode(&[t.specials.sot, ids[0], t.specials.timestamp_begin]),
            "hello"
        );
    }
}
