//! MongoDB wire protocol framing: OP_MSG (2013), legacy OP_QUERY (2004) and OP_REPLY (1).
//! Only what drivers use against a standalone server; OP_COMPRESSED is never advertised.

use bson::{Bson, Document};
use std::io::{self, Read, Write};

pub const OP_REPLY: i32 = 1;
pub const OP_QUERY: i32 = 2004;
pub const OP_MSG: i32 = 2013;
const CHECKSUM_PRESENT: u32 = 1;
pub const MORE_TO_COME: u32 = 1 << 1;

/// One decoded request.
pub enum Request {
    /// OP_MSG: the body with any kind-1 document sequences merged in as arrays.
    Msg {
        flags: u32,
        body: Document,
    },
    /// OP_QUERY against `<db>.$cmd` (the legacy handshake).
    Query {
        collection: String,
        query: Document,
    },
    Other(i32),
}

pub struct Frame {
    pub request_id: i32,
    pub request: Request,
}

fn io_err(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_cstring(buf: &[u8], pos: &mut usize) -> io::Result<String> {
    let end = buf[*pos..]
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| io_err("unterminated cstring"))?;
    let s = String::from_utf8_lossy(&buf[*pos..*pos + end]).into_owned();
    *pos += end + 1;
    Ok(s)
}

fn read_doc(buf: &[u8], pos: &mut usize) -> io::Result<Document> {
    if buf.len() < *pos + 4 {
        return Err(io_err("truncated document"));
    }
    let len = i32::from_le_bytes(buf[*pos..*pos + 4].try_into().unwrap()) as usize;
    if len < 5 || buf.len() < *pos + len {
        return Err(io_err("bad document length"));
    }
    let doc =
        Document::from_reader(&mut &buf[*pos..*pos + len]).map_err(|e| io_err(e.to_string()))?;
    *pos += len;
    Ok(doc)
}

/// Reads one message; `Ok(None)` on a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut header = [0u8; 16];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = i32::from_le_bytes(header[0..4].try_into().unwrap());
    let request_id = i32::from_le_bytes(header[4..8].try_into().unwrap());
    let opcode = i32::from_le_bytes(header[12..16].try_into().unwrap());
    if !(16..=48_000_000).contains(&len) {
        return Err(io_err(format!("bad message length {len}")));
    }
    let mut buf = vec![0u8; len as usize - 16];
    r.read_exact(&mut buf)?;
    let request = match opcode {
        OP_MSG => parse_msg(&buf)?,
        OP_QUERY => {
            let mut pos = 4;
            let collection = read_cstring(&buf, &mut pos)?;
            pos += 8; // numberToSkip, numberToReturn
            let mut query = read_doc(&buf, &mut pos)?;
            // Legacy drivers may wrap the command as {$query: {...}, $readPreference: ...}.
            if let Ok(inner) = query.get_document("$query") {
                query = inner.clone();
            }
            Request::Query { collection, query }
        }
        // OP_REPLY is what a client reads back; OP_MSG replies are parsed the same way.
        OP_REPLY => {
            let mut pos = 20;
            Request::Msg {
                flags: 0,
                body: read_doc(&buf, &mut pos)?,
            }
        }
        other => Request::Other(other),
    };
    Ok(Some(Frame {
        request_id,
        request,
    }))
}

fn parse_msg(buf: &[u8]) -> io::Result<Request> {
    if buf.len() < 4 {
        return Err(io_err("short OP_MSG"));
    }
    let flags = u32::from_le_bytes(buf[0..4].try_into().unwrap());
    let end = if flags & CHECKSUM_PRESENT != 0 {
        buf.len() - 4
    } else {
        buf.len()
    };
    let mut pos = 4;
    let mut body = None;
    let mut sequences: Vec<(String, Vec<Bson>)> = Vec::new();
    while pos < end {
        let kind = buf[pos];
        pos += 1;
        match kind {
            0 => body = Some(read_doc(&buf[..end], &mut pos)?),
            1 => {
                let start = pos;
                let size = i32::from_le_bytes(buf[pos..pos + 4].try_into().unwrap()) as usize;
                pos += 4;
                let id = read_cstring(buf, &mut pos)?;
                let mut docs = Vec::new();
                while pos < start + size {
                    docs.push(Bson::Document(read_doc(&buf[..end], &mut pos)?));
                }
                sequences.push((id, docs));
            }
            k => return Err(io_err(format!("unknown OP_MSG section kind {k}"))),
        }
    }
    let mut body = body.ok_or_else(|| io_err("OP_MSG without body"))?;
    for (id, docs) in sequences {
        body.insert(id, Bson::Array(docs));
    }
    Ok(Request::Msg { flags, body })
}

fn frame(request_id: i32, response_to: i32, opcode: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + payload.len());
    out.extend_from_slice(&((16 + payload.len()) as i32).to_le_bytes());
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(&response_to.to_le_bytes());
    out.extend_from_slice(&opcode.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Encodes an OP_MSG with a single body section.
pub fn encode_msg(request_id: i32, response_to: i32, body: &Document) -> io::Result<Vec<u8>> {
    let mut payload = vec![0, 0, 0, 0, 0];
    body.to_writer(&mut payload)
        .map_err(|e| io_err(e.to_string()))?;
    Ok(frame(request_id, response_to, OP_MSG, &payload))
}

/// Encodes an OP_REPLY carrying one document (the answer to a legacy OP_QUERY command).
pub fn encode_reply(request_id: i32, response_to: i32, body: &Document) -> io::Result<Vec<u8>> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&0i32.to_le_bytes()); // responseFlags
    payload.extend_from_slice(&0i64.to_le_bytes()); // cursorID
    payload.extend_from_slice(&0i32.to_le_bytes()); // startingFrom
    payload.extend_from_slice(&1i32.to_le_bytes()); // numberReturned
    body.to_writer(&mut payload)
        .map_err(|e| io_err(e.to_string()))?;
    Ok(frame(request_id, response_to, OP_REPLY, &payload))
}

pub fn write_all(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    w.write_all(bytes)?;
    w.flush()
}
