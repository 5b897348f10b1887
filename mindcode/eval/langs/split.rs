// The Rust bridge (mindcode.eval.langs.rust; Python's is mindcode.eval.sandbox.split): a sample and its test in two
// test binaries, so that the verdict is never the sample's to give. rust.py builds this file once into a library,
// `mindcode_split`, that both programs link (`--extern`), so that neither compiles it again. The candidate's program is
// the sample and one test, `mindcode_split_serve`, that answers calls of its entry point: arguments decoded into the
// owned form of the declaration's types (`String` for `&str`, `Vec<T>` for `&[T]` and `&Vec<T>`) and lent as the entry
// point takes them. The test program is the problem's text alone (trusted: the declaration's `use` lines, the prompt's
// helpers, a proxy `mindcode_split::call((a.to_string(), b))` with the prompt's signature, the test module), compiled
// once per problem with `rustc --test`; its exit status is the verdict.
//
// Calls cross two pipes, fd 3 and 4 (each side reads on 3 and writes on 4), in frames of a 4-byte little-endian
// length and a payload. Values are encoded by type (both sides know the declaration's): integers and floats as 8
// bytes, `bool` and `char`, `String`, `Vec`, `Option`, tuples, `HashMap` and `HashSet`; a type without an
// implementation does not compile, and that problem's test then runs inside the program, bigcode's way. A panic in
// the entry point is the candidate's failure, reported to the test, as is a malformed frame.
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::Hash;
use std::io::{Read, Write};
use std::os::unix::io::FromRawFd;
use std::sync::Mutex;

const MAX_FRAME: usize = 16 << 20;

pub struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.data.len() - self.at < n {
            return Err("the program broke the call protocol".into());
        }
        self.at += n;
        Ok(&self.data[self.at - n..self.at])
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.bytes(8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap()))
    }
    fn count(&mut self) -> Result<usize, String> {
        let n = self.u64()?; // every element takes a byte: no count beyond the frame
        if n > (self.data.len() - self.at) as u64 {
            return Err("the program broke the call protocol".into());
        }
        Ok(n as usize)
    }
}

pub trait Wire: Sized {
    fn put(&self, out: &mut Vec<u8>);
    fn get(r: &mut Reader) -> Result<Self, String>;
}

macro_rules! integer {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            fn put(&self, out: &mut Vec<u8>) { out.extend_from_slice(&(*self as i64).to_le_bytes()); }
            fn get(r: &mut Reader) -> Result<Self, String> {
                <$t>::try_from(r.u64()? as i64).map_err(|_| "an integer out of its type's range".to_string())
            }
        }
    )*};
}
integer!(i8, i16, i32, i64, isize, u8, u16, u32, usize);

impl Wire for u64 {
    fn put(&self, out: &mut Vec<u8>) { out.extend_from_slice(&self.to_le_bytes()); }
    fn get(r: &mut Reader) -> Result<Self, String> { r.u64() }
}
impl Wire for f64 {
    fn put(&self, out: &mut Vec<u8>) { out.extend_from_slice(&self.to_bits().to_le_bytes()); }
    fn get(r: &mut Reader) -> Result<Self, String> { Ok(f64::from_bits(r.u64()?)) }
}
impl Wire for f32 {
    fn put(&self, out: &mut Vec<u8>) { out.extend_from_slice(&(self.to_bits() as u64).to_le_bytes()); }
    fn get(r: &mut Reader) -> Result<Self, String> {
        u32::try_from(r.u64()?).map(f32::from_bits).map_err(|_| "the program broke the call protocol".into())
    }
}
impl Wire for bool {
    fn put(&self, out: &mut Vec<u8>) { out.push(*self as u8); }
    fn get(r: &mut Reader) -> Result<Self, String> { Ok(r.bytes(1)?[0] != 0) }
}
impl Wire for char {
    fn put(&self, out: &mut Vec<u8>) { (*self as u32 as i64).put(out); }
    fn get(r: &mut Reader) -> Result<Self, String> {
        char::from_u32(r.u64()? as u32).ok_or_else(|| "the program broke the call protocol".to_string())
    }
}
impl Wire for String {
    fn put(&self, out: &mut Vec<u8>) {
        (self.len() as u64).put(out);
        out.extend_from_slice(self.as_bytes());
    }
    fn get(r: &mut Reader) -> Result<Self, String> {
        let n = r.count()?;
        String::from_utf8(r.bytes(n)?.to_vec()).map_err(|_| "the program broke the call protocol".into())
    }
}
impl Wire for () {
    fn put(&self, _: &mut Vec<u8>) {}
    fn get(_: &mut Reader) -> Result<Self, String> { Ok(()) }
}
impl<T: Wire> Wire for Vec<T> {
    fn put(&self, out: &mut Vec<u8>) {
        (self.len() as u64).put(out);
        self.iter().for_each(|x| x.put(out));
    }
    fn get(r: &mut Reader) -> Result<Self, String> { (0..r.count()?).map(|_| T::get(r)).collect() }
}
impl<T: Wire> Wire for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        self.is_some().put(out);
        if let Some(x) = self { x.put(out); }
    }
    fn get(r: &mut Reader) -> Result<Self, String> { Ok(if bool::get(r)? { Some(T::get(r)?) } else { None }) }
}
impl<K: Wire + Eq + Hash, V: Wire> Wire for HashMap<K, V> {
    fn put(&self, out: &mut Vec<u8>) {
        (self.len() as u64).put(out);
        self.iter().for_each(|(k, v)| { k.put(out); v.put(out); });
    }
    fn get(r: &mut Reader) -> Result<Self, String> {
        (0..r.count()?).map(|_| Ok((K::get(r)?, V::get(r)?))).collect()
    }
}
impl<T: Wire + Eq + Hash> Wire for HashSet<T> {
    fn put(&self, out: &mut Vec<u8>) {
        (self.len() as u64).put(out);
        self.iter().for_each(|x| x.put(out));
    }
    fn get(r: &mut Reader) -> Result<Self, String> { (0..r.count()?).map(|_| T::get(r)).collect() }
}
macro_rules! tuple {
    ($(($($t:ident $i:tt),+)),*) => {$(
        impl<$($t: Wire),+> Wire for ($($t,)+) {
            fn put(&self, out: &mut Vec<u8>) { $(self.$i.put(out);)+ }
            fn get(r: &mut Reader) -> Result<Self, String> { Ok(($($t::get(r)?,)+)) }
        }
    )*};
}
tuple!((A 0), (A 0, B 1), (A 0, B 1, C 2), (A 0, B 1, C 2, D 3), (A 0, B 1, C 2, D 3, E 4));

fn send(to: &mut File, payload: &[u8]) -> bool {
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(payload);
    to.write_all(&frame).is_ok()
}

fn receive(from: &mut File) -> Option<Vec<u8>> {
    let mut head = [0u8; 4];
    from.read_exact(&mut head).ok()?;
    let n = u32::from_le_bytes(head) as usize;
    if n > MAX_FRAME {
        return None;
    }
    let mut payload = vec![0u8; n];
    from.read_exact(&mut payload).ok()?;
    Some(payload)
}

// The candidate's side: answer calls until the test closes the pipe. `answer` decodes the arguments and calls.
pub fn serve(answer: impl Fn(&mut Reader) -> Result<Vec<u8>, String>) {
    let (mut requests, mut replies) = unsafe { (File::from_raw_fd(3), File::from_raw_fd(4)) };
    if !send(&mut replies, b"R") {
        std::process::exit(0);
    }
    std::panic::set_hook(Box::new(|_| {})); // a panic is reported to the test, not printed
    while let Some(frame) = receive(&mut requests) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            answer(&mut Reader { data: &frame, at: 0 })
        }));
        let reply = match outcome {
            Ok(Ok(value)) => [b"V".to_vec(), value].concat(),
            Ok(Err(message)) => format!("E{}", message).into_bytes(),
            Err(panic) => {
                let text = panic.downcast_ref::<String>().cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic".into());
                format!("Epanicked: {}", text.chars().take(4000).collect::<String>()).into_bytes()
            }
        };
        if !send(&mut replies, &reply) {
            break;
        }
    }
    std::process::exit(0);
}

pub fn encode<T: Wire>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value.put(&mut out);
    out
}

pub fn arg<T: Wire>(r: &mut Reader) -> Result<T, String> { T::get(r) }

static PIPES: Mutex<Option<(File, File)>> = Mutex::new(None);

// The test's side: one call of the candidate's entry point with the arguments as a tuple.
pub fn call<A: Wire, R: Wire>(args: A) -> R {
    let mut pipes = PIPES.lock().unwrap_or_else(|e| e.into_inner());
    if pipes.is_none() {
        let (mut replies, requests) = unsafe { (File::from_raw_fd(3), File::from_raw_fd(4)) };
        if receive(&mut replies).as_deref() != Some(b"R") {
            panic!("the program ended before the test could call it");
        }
        *pipes = Some((replies, requests));
    }
    let (replies, requests) = pipes.as_mut().unwrap();
    if !send(requests, &encode(&args)) {
        panic!("the program ended while the test was calling it");
    }
    let reply = receive(replies).unwrap_or_else(|| panic!("the program ended while the test was calling it"));
    match reply.first() {
        Some(b'V') => {
            let mut r = Reader { data: &reply, at: 1 };
            match R::get(&mut r) {
                Ok(value) if r.at == reply.len() => value,
                _ => panic!("the program broke the call protocol"),
            }
        }
        Some(b'E') => panic!("{}", String::from_utf8_lossy(&reply[1..])),
        _ => panic!("the program broke the call protocol"),
    }
}
