//! A pickle interpreter for the subset PyTorch checkpoints use (protocol 2, and the few
//! protocol 4 framing opcodes), building plain values instead of Python objects.
//!
//! Nothing is executed: a `GLOBAL` stays a name and a `REDUCE` stays a call record
//! ([`Value::Call`]), except `collections.OrderedDict()`, which becomes an empty
//! [`Value::Dict`] so the `SETITEMS` after it fill it in. Memo entries are snapshots taken
//! at `BINPUT` (a container filled later is not updated in the memo), which is all a
//! state dict needs: torch only fetches strings and globals back from the memo.

use std::io::Read;

/// A value built by the interpreter.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Keys and values in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A `module.name` reference (`torch._utils._rebuild_tensor_v2`).
    Global(String),
    /// `callable(*args)`, not run.
    Call(Box<Value>, Box<Value>),
    /// A persistent id (`BINPERSID`): torch's reference to a storage.
    Persistent(Box<Value>),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The items of a tuple or a list.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(v) | Value::List(v) => Some(v),
            _ => None,
        }
    }

    /// The value of `key` in a dict with string keys.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Why a pickle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    #[error("the pickle ends early: {0}")]
    Io(#[from] std::io::Error),
    #[error("unsupported pickle opcode 0x{opcode:02x} at byte {at}")]
    Opcode { opcode: u8, at: u64 },
    #[error("malformed pickle at byte {at}: {what}")]
    Malformed { at: u64, what: &'static str },
}

/// Stack entries: values and the marks that `TUPLE`, `SETITEMS` and `APPENDS` pop to.
enum Entry {
    Mark,
    Value(Value),
}

/// Reads one pickle (up to and including its `STOP`) from `input`.
pub fn read_pickle(input: &mut impl Read) -> Result<Value, PickleError> {
    let mut machine = Machine {
        input,
        at: 0,
        stack: Vec::new(),
        memo: Vec::new(),
    };
    machine.run()
}

struct Machine<'a, R: Read> {
    input: &'a mut R,
    /// Bytes read so far, for error messages.
    at: u64,
    stack: Vec<Entry>,
    memo: Vec<Option<Value>>,
}

impl<R: Read> Machine<'_, R> {
    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            let at = self.at;
            let opcode = self.byte()?;
            match opcode {
                0x80 => {
                    self.byte()?; // PROTO n
                }
                0x95 => {
                    self.bytes(8)?; // FRAME length: frames need no special handling
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(Entry::Mark),
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'K' => {
                    let v = self.byte()?;
                    self.push(Value::Int(v.into()));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.array()?);
                    self.push(Value::Int(v.into()));
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.push(Value::Int(v.into()));
                }
                0x8a => {
                    let len = usize::from(self.byte()?);
                    let bytes = self.bytes(len)?;
                    let value = long_from_le(&bytes).ok_or(self.malformed("LONG1 too long"))?;
                    self.push(Value::Int(value));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.array()?);
                    self.push(Value::Float(v));
                }
                b'X' => {
                    let len = u32::from_le_bytes(self.array()?) as usize;
                    let text = self.text(len)?;
                    self.push(Value::Str(text));
                }
                0x8c => {
                    let len = usize::from(self.byte()?);
                    let text = self.text(len)?;
                    self.push(Value::Str(text));
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global(format!("{module}.{name}")));
                }
                b')' => self.push(Value::Tuple(Vec::new())),
                b']' => self.push(Value::List(Vec::new())),
                b'}' => self.push(Value::Dict(Vec::new())),
                b't' => {
                    let items = self.pop_to_mark()?;
                    self.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(opcode - 0x84);
                    if self.stack.len() < n {
                        return Err(self.malformed("tuple of more items than the stack holds"));
                    }
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(items));
                }
                b'q' => {
                    let index = usize::from(self.byte()?);
                    self.memoize(index)?;
                }
                b'r' => {
                    let index = u32::from_le_bytes(self.array()?) as usize;
                    self.memoize(index)?;
                }
                0x94 => {
                    let index = self.memo.len();
                    self.memoize(index)?;
                }
                b'h' => {
                    let index = usize::from(self.byte()?);
                    self.recall(index)?;
                }
                b'j' => {
                    let index = u32::from_le_bytes(self.array()?) as usize;
                    self.recall(index)?;
                }
                b'Q' => {
                    let id = self.pop()?;
                    self.push(Value::Persistent(Box::new(id)));
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let value = match (&callable, &args) {
                        (Value::Global(name), Value::Tuple(a))
                            if name == "collections.OrderedDict" && a.is_empty() =>
                        {
                            Value::Dict(Vec::new())
                        }
                        _ => Value::Call(Box::new(callable), Box::new(args)),
                    };
                    self.push(value);
                }
                b'b' => {
                    // BUILD sets an object's attributes (`OrderedDict._metadata` in a
                    // state dict): not needed, so the state is dropped.
                    self.pop()?;
                    if !matches!(self.stack.last(), Some(Entry::Value(_))) {
                        return Err(self.malformed("BUILD without an object"));
                    }
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.dict_top()?.push((key, value));
                }
                b'u' => {
                    let items = self.pop_to_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(self.malformed("SETITEMS with an odd number of items"));
                    }
                    let mut items = items.into_iter();
                    let dict = self.dict_top()?;
                    while let (Some(k), Some(v)) = (items.next(), items.next()) {
                        dict.push((k, v));
                    }
                }
                b'a' => {
                    let value = self.pop()?;
                    self.list_top()?.push(value);
                }
                b'e' => {
                    let items = self.pop_to_mark()?;
                    self.list_top()?.extend(items);
                }
                _ => return Err(PickleError::Opcode { opcode, at }),
            }
        }
    }

    fn malformed(&self, what: &'static str) -> PickleError {
        PickleError::Malformed { at: self.at, what }
    }

    fn byte(&mut self) -> Result<u8, PickleError> {
        Ok(self.array::<1>()?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut buf = [0u8; N];
        self.input.read_exact(&mut buf)?;
        self.at += N as u64;
        Ok(buf)
    }

    fn bytes(&mut self, len: usize) -> Result<Vec<u8>, PickleError> {
        // Strings in a checkpoint are short; a huge length is a corrupt file, not a
        // reason to allocate gigabytes.
        if len > 1 << 20 {
            return Err(self.malformed("a string longer than 1 MiB"));
        }
        let mut buf = vec![0u8; len];
        self.input.read_exact(&mut buf)?;
        self.at += len as u64;
        Ok(buf)
    }

    fn text(&mut self, len: usize) -> Result<String, PickleError> {
        let bytes = self.bytes(len)?;
        String::from_utf8(bytes).map_err(|_| self.malformed("a string that is not UTF-8"))
    }

    /// A newline-terminated ASCII line (the operands of `GLOBAL`).
    fn line(&mut self) -> Result<String, PickleError> {
        let mut line = Vec::new();
        loop {
            match self.byte()? {
                b'\n' => break,
                b => line.push(b),
            }
            if line.len() > 256 {
                return Err(self.malformed("a GLOBAL name longer than 256 bytes"));
            }
        }
        String::from_utf8(line).map_err(|_| self.malformed("a GLOBAL name that is not UTF-8"))
    }

    fn push(&mut self, value: Value) {
        self.stack.push(Entry::Value(value));
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        match self.stack.pop() {
            Some(Entry::Value(v)) => Ok(v),
            Some(Entry::Mark) => Err(self.malformed("a mark where a value was expected")),
            None => Err(self.malformed("pop from an empty stack")),
        }
    }

    fn pop_to_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let mut items = Vec::new();
        loop {
            match self.stack.pop() {
                Some(Entry::Mark) => break,
                Some(Entry::Value(v)) => items.push(v),
                None => return Err(self.malformed("no mark on the stack")),
            }
        }
        items.reverse();
        Ok(items)
    }

    fn memoize(&mut self, index: usize) -> Result<(), PickleError> {
        let value = match self.stack.last() {
            Some(Entry::Value(v)) => v.clone(),
            _ => return Err(self.malformed("memoize without a value on the stack")),
        };
        if index > 1 << 20 {
            return Err(self.malformed("a memo index past 2^20"));
        }
        if self.memo.len() <= index {
            self.memo.resize(index + 1, None);
        }
        self.memo[index] = Some(value);
        Ok(())
    }

    fn recall(&mut self, index: usize) -> Result<(), PickleError> {
        let value = self
            .memo
            .get(index)
            .cloned()
            .flatten()
            .ok_or(self.malformed("a memo entry that was never stored"))?;
        self.push(value);
        Ok(())
    }

    fn dict_top(&mut self) -> Result<&mut Vec<(Value, Value)>, PickleError> {
        let err = self.malformed("SETITEM on something other than a dict");
        match self.stack.last_mut() {
            Some(Entry::Value(Value::Dict(items))) => Ok(items),
            _ => Err(err),
        }
    }

    fn list_top(&mut self) -> Result<&mut Vec<Value>, PickleError> {
        let err = self.malformed("APPEND on something other than a list");
        match self.stack.last_mut() {
            Some(Entry::Value(Value::List(items))) => Ok(items),
            _ => Err(err),
        }
    }
}

/// A little-endian two's-complement integer of up to 16 bytes (`LONG1`).
fn long_from_le(bytes: &[u8]) -> Option<i128> {
    if bytes.len() > 16 {
        return None;
    }
    let Some(&last) = bytes.last() else {
        return Some(0);
    };
    let fill = if last & 0x80 != 0 { 0xff } else { 0 };
    let mut buf = [fill; 16];
    buf[..bytes.len()].copy_from_slice(bytes);
    Some(i128::from_le_bytes(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<Value, PickleError> {
        read_pickle(&mut &bytes[..])
    }

    #[test]
    fn reads_the_torch_magic_number_and_protocol_version() {
        // What torch.save writes first (from Resemblyzer's pretrained.pt).
        let magic = read(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.").unwrap();
        assert_eq!(magic, Value::Int(0x1950a86a20f9469cfc6c));
        assert_eq!(read(b"\x80\x02M\xe9\x03.").unwrap(), Value::Int(1001));
        assert_eq!(read(b"\x8a\x01\xff.").unwrap(), Value::Int(-1));
        assert_eq!(read(b"J\xfe\xff\xff\xff.").unwrap(), Value::Int(-2));
    }

    #[test]
    fn builds_an_ordered_dict_of_tensor_calls_with_memoised_names() {
        // {'a': rebuild(PERSID(('storage', FloatStorage, '1', 'cpu', 4)), 0, (2, 2))} with
        // the global memoised and fetched back for a second entry.
        let mut p = Vec::new();
        p.extend_from_slice(b"\x80\x02ccollections\nOrderedDict\nq\x00)R(X\x01\x00\x00\x00a");
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\nq\x01((X\x07\x00\x00\x00storage");
        p.extend_from_slice(b"ctorch\nFloatStorage\nX\x01\x00\x00\x001X\x03\x00\x00\x00cpuK\x04Nt");
        p.extend_from_slice(b"QK\x00K\x02K\x02\x86\x89h\x00)Rtq\x02R");
        p.extend_from_slice(b"X\x01\x00\x00\x00bh\x01(K\x01\x85tRu.");
        let value = read(&p).unwrap();
        let Value::Dict(items) = &value else {
            panic!("not a dict: {value:?}")
        };
        assert_eq!(items.len(), 2);
        let Value::Call(callable, args) = value.get("a").unwrap() else {
            panic!("not a call")
        };
        assert_eq!(
            **callable,
            Value::Global("torch._utils._rebuild_tensor_v2".into())
        );
        let args = args.as_seq().unwrap();
        let Value::Persistent(id) = &args[0] else {
            panic!("no persistent id")
        };
        assert_eq!(id.as_seq().unwrap()[2].as_str(), Some("1"));
        assert_eq!(args[2], Value::Tuple(vec![Value::Int(2), Value::Int(2)]));
        assert_eq!(args[3], Value::Bool(false));
        assert_eq!(args[4], Value::Dict(Vec::new()));
        assert!(matches!(value.get("b"), Some(Value::Call(..))));
    }

    #[test]
    fn lists_append_and_unknown_opcodes_and_truncation_are_errors() {
        assert_eq!(
            read(b"](K\x01K\x02eK\x03a.").unwrap(),
            Value::List(vec![Value::Int(1), Value::Int(2), Value::Int(3)])
        );
        assert!(matches!(
            read(b"\x80\x02d."),
            Err(PickleError::Opcode {
                opcode: b'd',
                at: 2
            })
        ));
        assert!(matches!(
            read(b"X\x10\x00\x00\x00ab"),
            Err(PickleError::Io(_))
        ));
        assert!(matches!(read(b"t."), Err(PickleError::Malformed { .. })));
        assert!(matches!(
            read(b"h\x05."),
            Err(PickleError::Malformed { .. })
        ));
        assert!(matches!(
            read(b"K\x01K\x02s."),
            Err(PickleError::Malformed { .. })
        ));
    }
}
