//! The signing key of a profile's apt source must be one ASCII-armored OpenPGP public key
//! block (RFC 4880 §6): checked at load, so a private key, a binary keyring or junk is named
//! by lint instead of failing in apt's signature check inside a container. By hand: armor is
//! a dozen lines, and no OpenPGP crate is needed to tell a public key from anything else.

use base64::Engine;

const BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const END: &str = "-----END PGP PUBLIC KEY BLOCK-----";
/// Public-Key packet (RFC 4880 §5.5.1.1).
const TAG_PUBLIC_KEY: u8 = 6;

/// Whether `text` is exactly one armored public key block whose checksum (when present)
/// matches and whose first packet is a public key; otherwise what is wrong.
pub fn check_public_key(text: &str) -> Result<(), String> {
    if text.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
        return Err("it holds a PRIVATE key: never ship one; export the public key (gpg --armor --export KEYID)".into());
    }
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == BEGIN)
        .ok_or("no `-----BEGIN PGP PUBLIC KEY BLOCK-----` line: not an ASCII-armored public key")?;
    if lines[..start].iter().any(|l| !l.trim().is_empty()) {
        return Err("text before the `BEGIN PGP PUBLIC KEY BLOCK` line".into());
    }
    let end = start
        + lines[start..]
            .iter()
            .position(|l| l.trim() == END)
            .ok_or("no `-----END PGP PUBLIC KEY BLOCK-----` line")?;
    if lines[end + 1..].iter().any(|l| !l.trim().is_empty()) {
        return Err(
            "text after the `END PGP PUBLIC KEY BLOCK` line (one key block per file)".into(),
        );
    }
    // Armor headers (`Comment: ...`) end at the first blank line; without headers the body
    // starts at once.
    let mut body = &lines[start + 1..end];
    if let Some(blank) = body.iter().position(|l| l.trim().is_empty()) {
        if body[..blank].iter().all(|l| l.contains(": ")) {
            body = &body[blank + 1..];
        }
    }
    let mut data = String::new();
    let mut crc = None;
    for l in body {
        let l = l.trim();
        if let Some(sum) = l.strip_prefix('=') {
            crc = Some(sum.to_string());
        } else if crc.is_some() && !l.is_empty() {
            return Err("data after the checksum line".into());
        } else {
            data.push_str(l);
        }
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.as_bytes())
        .map_err(|e| format!("its body is not base64: {e}"))?;
    let first = *bytes.first().ok_or("an empty key block")?;
    if let Some(sum) = crc {
        let want = base64::engine::general_purpose::STANDARD
            .decode(sum.as_bytes())
            .map_err(|_| "its checksum line is not base64")?;
        let got = crc24(&bytes).to_be_bytes();
        if want != got[1..] {
            return Err(
                "its checksum does not match: the key was damaged (copied in part?)".into(),
            );
        }
    }
    if first & 0x80 == 0 {
        return Err("its body is no OpenPGP packet".into());
    }
    let tag = if first & 0x40 != 0 {
        first & 0x3f
    } else {
        (first >> 2) & 0x0f
    };
    if tag != TAG_PUBLIC_KEY {
        return Err(format!(
            "its first packet is of type {tag}, not a public key (6)"
        ));
    }
    Ok(())
}

/// The armor checksum (RFC 4880 §6.1).
fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0xB7_04CE;
    for &b in data {
        crc ^= u32::from(b) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x100_0000 != 0 {
                crc ^= 0x186_4CFB;
            }
        }
    }
    crc & 0xFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armor(body: &[u8], headers: &str) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        let sum = b64.encode(&crc24(body).to_be_bytes()[1..]);
        format!("{BEGIN}\n{headers}\n{}\n={sum}\n{END}\n", b64.encode(body))
    }

    /// A new-format Public-Key packet header (tag 6) and a few bytes: what matters here.
    const PUBLIC: &[u8] = &[0xC6, 0x04, 0x04, 0x00, 0x00, 0x00];

    #[test]
    fn an_armored_public_key_passes_with_or_without_headers() {
        assert_eq!(check_public_key(&armor(PUBLIC, "Comment: test\n")), Ok(()));
        assert_eq!(check_public_key(&armor(PUBLIC, "")), Ok(()));
        // Old-format header: tag 6, one length byte.
        assert_eq!(check_public_key(&armor(&[0x99, 0x00, 0x01], "")), Ok(()));
    }

    #[test]
    fn anything_else_is_named() {
        let private =
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxx\n-----END PGP PRIVATE KEY BLOCK-----\n";
        assert!(check_public_key(private).unwrap_err().contains("PRIVATE"));
        assert!(check_public_key("hello\n").unwrap_err().contains("BEGIN"));
        // A signature packet (tag 2), armored as a key.
        assert!(check_public_key(&armor(&[0xC2, 0x01, 0x00], ""))
            .unwrap_err()
            .contains("type 2"));
        let mut damaged = armor(PUBLIC, "");
        damaged = damaged.replacen("xgQE", "xgQF", 1);
        assert!(check_public_key(&damaged).unwrap_err().contains("checksum"));
        let two = format!("{}{}", armor(PUBLIC, ""), armor(PUBLIC, ""));
        assert!(check_public_key(&two).unwrap_err().contains("after"));
        let not_b64 = format!("{BEGIN}\n\n!!!!\n{END}\n");
        assert!(check_public_key(&not_b64).unwrap_err().contains("base64"));
    }

    #[test]
    fn crc24_matches_the_rfc_reference() {
        // gpg's armor of an empty body has checksum `=twTO` (0xB704CE, the initial value).
        assert_eq!(crc24(&[]), 0xB7_04CE);
    }
}
