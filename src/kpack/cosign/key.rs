//! cosign private keys: the PEM block `ENCRYPTED SIGSTORE PRIVATE KEY` (or the older
//! `ENCRYPTED COSIGN PRIVATE KEY`) holding go-securesystemslib's `encrypted` JSON (scrypt key
//! derivation, NaCl secretbox) around a PKCS #8 key. Error texts are cosign's `LoadPrivateKey`
//! and `encrypted.Decrypt`'s, so kpack users see the messages they know.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use crypto_secretbox::aead::{Aead as _, KeyInit as _};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, KeyPair as _};

pub const SIGSTORE_PEM_TYPE: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
pub const COSIGN_PEM_TYPE: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// The scrypt parameters `encrypted.CheckParams` accepts: legacy, standard, OWASP.
const SCRYPT_PARAMS: [(u64, u32, u32); 3] = [(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)];

/// A loaded signing key. Signs as cosign does: ECDSA P-256 and RSA PKCS#1 v1.5 over SHA-256,
/// Ed25519 over the message itself.
pub enum Signer {
    EcdsaP256(sig::EcdsaKeyPair),
    Ed25519(sig::Ed25519KeyPair),
    Rsa(sig::RsaKeyPair),
}

impl std::fmt::Debug for Signer {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signer::EcdsaP256(_) => "Signer(ecdsa-p256)",
            Signer::Ed25519(_) => "Signer(ed25519)",
            Signer::Rsa(_) => "Signer(rsa)",
        })
    }
}

impl Signer {
    /// The signature over `msg`: ASN.1 DER for ECDSA, raw for Ed25519 and RSA.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, String> {
        let rng = SystemRandom::new();
        match self {
            Signer::EcdsaP256(k) => k
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "ecdsa signing failed".to_string()),
            Signer::Ed25519(k) => Ok(k.sign(msg).as_ref().to_vec()),
            Signer::Rsa(k) => {
                let mut out = vec![0u8; k.public().modulus_len()];
                k.sign(&sig::RSA_PKCS1_SHA256, &rng, msg, &mut out)
                    .map_err(|_| "rsa signing failed".to_string())?;
                Ok(out)
            }
        }
    }

    /// Whether `signature` over `msg` was made by this key.
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        let (alg, public): (&dyn sig::VerificationAlgorithm, &[u8]) = match self {
            Signer::EcdsaP256(k) => (&sig::ECDSA_P256_SHA256_ASN1, k.public_key().as_ref()),
            Signer::Ed25519(k) => (&sig::ED25519, k.public_key().as_ref()),
            Signer::Rsa(k) => (&sig::RSA_PKCS1_2048_8192_SHA256, k.public().as_ref()),
        };
        sig::UnparsedPublicKey::new(alg, public)
            .verify(msg, signature)
            .is_ok()
    }
}

/// cosign's `LoadPrivateKey(key, password)`.
pub fn load(pem: &[u8], password: &[u8]) -> Result<Signer, String> {
    let (kind, body) = pem_decode(pem).ok_or("invalid pem block")?;
    if kind != SIGSTORE_PEM_TYPE && kind != COSIGN_PEM_TYPE {
        return Err(format!("unsupported pem type: {kind}"));
    }
    let der = decrypt(&body, password).map_err(|e| format!("decrypt: {e}"))?;
    parse_pkcs8(&der).map_err(|e| format!("parsing private key: {e}"))
}

/// Go's `pem.Decode` for one block without headers: its type and decoded body.
fn pem_decode(data: &[u8]) -> Option<(String, Vec<u8>)> {
    let text = std::str::from_utf8(data).ok()?;
    let start = text.find("-----BEGIN ")?;
    let (kind, rest) = text[start + "-----BEGIN ".len()..].split_once("-----")?;
    if kind.contains('\n') {
        return None;
    }
    let end = rest.find(&format!("-----END {kind}-----"))?;
    let b64: String = rest[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    Some((kind.to_string(), STANDARD.decode(b64).ok()?))
}

#[derive(serde::Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(default)]
    ciphertext: String,
}

#[derive(serde::Deserialize)]
struct Kdf {
    #[serde(default)]
    name: String,
    #[serde(default)]
    params: KdfParams,
    #[serde(default)]
    salt: String,
}

#[derive(serde::Deserialize, Default)]
struct KdfParams {
    #[serde(rename = "N", default)]
    n: u64,
    #[serde(default)]
    r: u32,
    #[serde(default)]
    p: u32,
}

#[derive(serde::Deserialize)]
struct Cipher {
    #[serde(default)]
    name: String,
    #[serde(default)]
    nonce: String,
}

/// go-securesystemslib's `encrypted.Decrypt`.
fn decrypt(json: &[u8], password: &[u8]) -> Result<Vec<u8>, String> {
    let d: Encrypted = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    if d.kdf.name != "scrypt" {
        return Err(format!("encrypted: unknown kdf name {:?}", d.kdf.name));
    }
    if d.cipher.name != "nacl/secretbox" {
        return Err(format!(
            "encrypted: unknown cipher name {:?}",
            d.cipher.name
        ));
    }
    let p = &d.kdf.params;
    if !SCRYPT_PARAMS.contains(&(p.n, p.r, p.p)) {
        return Err("unsupported scrypt parameters".into());
    }
    let b64 = |s: &str| {
        STANDARD
            .decode(s)
            .map_err(|e| format!("illegal base64 data: {e}"))
    };
    let (salt, nonce, ct) = (
        b64(&d.kdf.salt)?,
        b64(&d.cipher.nonce)?,
        b64(&d.ciphertext)?,
    );
    let params =
        scrypt::Params::new(p.n.trailing_zeros() as u8, p.r, p.p, 32).map_err(|e| e.to_string())?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, &salt, &params, &mut key).map_err(|e| e.to_string())?;
    if nonce.len() != 24 {
        return Err("encrypted: incorrect nonce size".into());
    }
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&key.into());
    cipher
        .decrypt(crypto_secretbox::Nonce::from_slice(&nonce), ct.as_slice())
        .map_err(|_| "encrypted: decryption failed".to_string())
}

// DER object identifiers (content bytes) of the PKCS #8 algorithms we meet.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// One DER TLV: (tag, contents, rest). Short and long definite lengths only.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The algorithm OID and its parameters' OID (the curve, for EC keys) of a PKCS #8 key.
fn pkcs8_algorithm(der_bytes: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let (0x30, info, _) = der(der_bytes)? else {
        return None;
    };
    let (0x02, _version, rest) = der(info)? else {
        return None;
    };
    let (0x30, alg, _) = der(rest)? else {
        return None;
    };
    let (0x06, oid, params) = der(alg)? else {
        return None;
    };
    let curve = match der(params) {
        Some((0x06, c, _)) => Some(c),
        _ => None,
    };
    Some((oid, curve))
}

fn parse_pkcs8(der_bytes: &[u8]) -> Result<Signer, String> {
    let rejected = |e: ring::error::KeyRejected| e.to_string();
    match pkcs8_algorithm(der_bytes).ok_or("malformed PKCS #8 private key")? {
        (OID_EC_PUBLIC_KEY, Some(OID_P256)) => sig::EcdsaKeyPair::from_pkcs8(
            &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
            der_bytes,
            &SystemRandom::new(),
        )
        .map(Signer::EcdsaP256)
        .map_err(rejected),
        (OID_EC_PUBLIC_KEY, Some(c)) if c == OID_P384 || c == OID_P521 => Err(
            "ECDSA P-384 and P-521 cosign keys are not supported yet (P-256, cosign's default, \
             Ed25519 and RSA are)"
                .into(),
        ),
        (OID_ED25519, _) => sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der_bytes)
            .map(Signer::Ed25519)
            .map_err(rejected),
        (OID_RSA, _) => sig::RsaKeyPair::from_pkcs8(der_bytes)
            .map(Signer::Rsa)
            .map_err(rejected),
        _ => Err("unsupported key type".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seal `pkcs8` the way `encrypted.Encrypt` does, with our own primitives (the integration
    /// tests check the format against libsodium and OpenSSL).
    fn seal(pkcs8: &[u8], password: &[u8], n: u64) -> Vec<u8> {
        let (salt, nonce) = ([7u8; 32], [9u8; 24]);
        let params = scrypt::Params::new(n.trailing_zeros() as u8, 8, 1, 32).unwrap();
        let mut key = [0u8; 32];
        scrypt::scrypt(password, &salt, &params, &mut key).unwrap();
        let ct = crypto_secretbox::XSalsa20Poly1305::new(&key.into())
            .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), pkcs8)
            .unwrap();
        let json = format!(
            r#"{{"kdf":{{"name":"scrypt","params":{{"N":{n},"r":8,"p":1}},"salt":"{}"}},"cipher":{{"name":"nacl/secretbox","nonce":"{}"}},"ciphertext":"{}"}}"#,
            STANDARD.encode(salt),
            STANDARD.encode(nonce),
            STANDARD.encode(ct)
        );
        format!(
            "-----BEGIN {SIGSTORE_PEM_TYPE}-----\n{}\n-----END {SIGSTORE_PEM_TYPE}-----\n",
            STANDARD.encode(json)
        )
        .into_bytes()
    }

    fn p256() -> Vec<u8> {
        sig::EcdsaKeyPair::generate_pkcs8(
            &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
            &SystemRandom::new(),
        )
        .unwrap()
        .as_ref()
        .to_vec()
    }

    #[test]
    fn loads_signs_and_verifies() {
        let pem = seal(&p256(), b"pw", 32768);
        let k = load(&pem, b"pw").unwrap();
        assert_eq!(format!("{k:?}"), "Signer(ecdsa-p256)");
        let s = k.sign(b"payload").unwrap();
        assert!(k.verify(b"payload", &s));
        assert!(!k.verify(b"other", &s));
        let ed = sig::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let k = load(&seal(ed.as_ref(), b"", 32768), b"").unwrap();
        let s = k.sign(b"m").unwrap();
        assert!(k.verify(b"m", &s));
    }

    #[test]
    fn errors_are_cosigns() {
        let pem = seal(&p256(), b"pw", 32768);
        assert_eq!(
            load(&pem, b"wrong").unwrap_err(),
            "decrypt: encrypted: decryption failed"
        );
        assert_eq!(load(b"not a key", b"").unwrap_err(), "invalid pem block");
        assert_eq!(
            load(
                b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                b""
            )
            .unwrap_err(),
            "unsupported pem type: PUBLIC KEY"
        );
        let tampered = String::from_utf8(pem.clone()).unwrap();
        let body: String = tampered.lines().nth(1).unwrap().to_string();
        let json = String::from_utf8(STANDARD.decode(&body).unwrap()).unwrap();
        for (from, to, want) in [
            (
                "\"N\":32768",
                "\"N\":1024",
                "decrypt: unsupported scrypt parameters",
            ),
            (
                "\"scrypt\"",
                "\"pbkdf2\"",
                "decrypt: encrypted: unknown kdf name \"pbkdf2\"",
            ),
            (
                "nacl/secretbox",
                "aes",
                "decrypt: encrypted: unknown cipher name \"aes\"",
            ),
        ] {
            let bad = tampered.replace(&body, &STANDARD.encode(json.replace(from, to)));
            assert_eq!(load(bad.as_bytes(), b"pw").unwrap_err(), want);
        }
        assert_eq!(
            load(&seal(b"\x30\x03\x02\x01\x00", b"", 32768), b"").unwrap_err(),
            "parsing private key: malformed PKCS #8 private key"
        );
    }

    #[test]
    fn pkcs8_algorithms() {
        assert_eq!(
            pkcs8_algorithm(&p256()),
            Some((OID_EC_PUBLIC_KEY, Some(OID_P256)))
        );
        let p384 = sig::EcdsaKeyPair::generate_pkcs8(
            &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
            &SystemRandom::new(),
        )
        .unwrap();
        let e = load(&seal(p384.as_ref(), b"", 32768), b"").unwrap_err();
        assert!(e.contains("not supported yet"), "{e}");
    }
}
