//! `completion` signing with cosign keys, checked by implementations that are not ours: the
//! keys are made by OpenSSL and sealed in cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` format by
//! libsodium (PyNaCl) and OpenSSL's scrypt (Python's hashlib), the signature image is read
//! with skopeo, and every signature is verified with `openssl`. No real cosign is packaged for
//! Debian 12, PyPI or npm (their sigstore clients are keyless only).

mod kpack_util;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use buildpod::layer::{CompressOptions, Compression, TarOptions};
use buildpod::oci::assemble::{push_layer, write_image};
use buildpod::oci::{media, BlobStore, ImageConfig};
use buildpod::registry::{Client, ClientOptions, Repo};
use kpack_util::Root;
use support::registry::Registry;
use support::tools;

const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIG_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// cosign's key format (go-securesystemslib `encrypted`, Standard scrypt parameters, the PEM
/// body wrapped at 64 columns like Go's `pem.Encode`), written with libsodium and OpenSSL.
const SEAL_PY: &str = r#"
import base64, hashlib, json, os, sys
import nacl.secret
der = open(sys.argv[1], 'rb').read()
pw = open(sys.argv[2], 'rb').read()
salt, nonce = os.urandom(32), os.urandom(24)
key = hashlib.scrypt(pw, salt=salt, n=65536, r=8, p=1, maxmem=1 << 28, dklen=32)
ct = nacl.secret.SecretBox(key).encrypt(der, nonce).ciphertext
b64 = lambda b: base64.b64encode(b).decode()
doc = json.dumps({"kdf": {"name": "scrypt", "params": {"N": 65536, "r": 8, "p": 1}, "salt": b64(salt)},
                  "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
                  "ciphertext": b64(ct)}, separators=(',', ':')).encode()
body = b64(doc)
lines = [body[i:i + 64] for i in range(0, len(body), 64)]
open(sys.argv[3], 'w').write("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + "\n".join(lines)
                             + "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
"#;

fn python() -> &'static str {
    // Debian's python3 has python3-nacl (ci/test installs it); pyenv shims may not.
    let py = "/usr/bin/python3";
    let ok = Command::new(py)
        .args(["-c", "import nacl.secret, hashlib"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{py} with python3-nacl is required (apt-get install python3-nacl)"
    );
    py
}

/// A key pair made by OpenSSL: the cosign key sealed under `password` into
/// `<dir>/cosign.key`, the public key in `<dir>/../<name>.pub.pem`.
fn keypair(secret_dir: &Path, algorithm: &[&str], password: Option<&str>) -> PathBuf {
    tools::require("openssl");
    std::fs::create_dir_all(secret_dir).unwrap();
    let work = tempfile::tempdir().unwrap();
    let pem = work.path().join("key.pem");
    let der = work.path().join("key.der");
    let mut args = vec!["genpkey"];
    args.extend_from_slice(algorithm);
    args.extend(["-out", pem.to_str().unwrap()]);
    tools::run("openssl", &args);
    tools::run(
        "openssl",
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            pem.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            der.to_str().unwrap(),
        ],
    );
    let public = secret_dir.with_extension("pub.pem");
    tools::run(
        "openssl",
        &[
            "pkey",
            "-in",
            pem.to_str().unwrap(),
            "-pubout",
            "-out",
            public.to_str().unwrap(),
        ],
    );
    let pw_file = work.path().join("pw");
    std::fs::write(&pw_file, password.unwrap_or("")).unwrap();
    if let Some(pw) = password {
        std::fs::write(secret_dir.join("cosign.password"), pw).unwrap();
    }
    let st = Command::new(python())
        .args(["-c", SEAL_PY])
        .arg(&der)
        .arg(&pw_file)
        .arg(secret_dir.join("cosign.key"))
        .status()
        .unwrap();
    assert!(st.success());
    public
}

fn client() -> Arc<Client> {
    Client::new(ClientOptions::default()).unwrap()
}

/// Push `repo:latest` (one small layer); returns its digest.
fn push_app(reg: &Registry, repo: &str) -> String {
    let store = Repo::new(client(), &reg.host(), repo);
    let layer = push_layer(
        &store,
        &TarOptions::default(),
        &CompressOptions::new(Compression::Gzip),
        media::OCI_MANIFEST,
        &|t| t.file_entry(b"app/hello", 0o644, b"hello"),
    )
    .unwrap();
    let mut cfg = ImageConfig::new("linux", "amd64");
    cfg.set_label("io.buildpacks.stack.id", "io.example.stack");
    cfg.set_label(
        "io.buildpacks.build.metadata",
        r#"{"buildpacks":[{"id":"acme/go","version":"1.0.0"}],"launcher":{"version":"0.20.12"}}"#,
    );
    cfg.set_label(
        "io.buildpacks.lifecycle.metadata",
        &format!(
            r#"{{"runImage":{{"topLayer":"sha256:00","reference":"{}/run@sha256:{}"}},"stack":{{"runImage":{{"image":"{}/run"}}}}}}"#,
            reg.host(),
            "1".repeat(64),
            reg.host()
        ),
    );
    write_image(
        &store,
        &mut cfg,
        &[layer],
        media::OCI_MANIFEST,
        &["latest".into()],
    )
    .unwrap()
    .digest
    .to_string()
}

fn report(root: &Root, tag: &str, digest: &str) {
    std::fs::write(
        root.path("var/report/report.toml"),
        format!("[image]\n  tags = [\"{tag}\"]\n  digest = \"{digest}\"\n"),
    )
    .unwrap();
}

fn completion(root: &Root, args: &[&str]) -> kpack_util::Out {
    let term = root.path("tmp/termination-log");
    root.run(
        "completion",
        args,
        &[("TERMINATION_MESSAGE_PATH", term.to_str().unwrap())],
    )
}

/// A signature layer: (payload, raw signature).
type Signed = (Vec<u8>, Vec<u8>);

/// The signature image at `<host>/<repo>:sha256-<hex>.sig` as skopeo reads it, and each
/// layer's (payload, signature) fetched from the registry.
fn signatures(host: &str, repo: &str, digest: &str) -> (serde_json::Value, Vec<Signed>) {
    let tag = format!("{}.sig", digest.replace(':', "-"));
    let m = tools::skopeo_inspect_raw(
        &format!("docker://{host}/{repo}:{tag}"),
        &["--tls-verify=false"],
    );
    let store = Repo::new(client(), host, repo);
    use base64::Engine as _;
    let layers = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let d = l["digest"].as_str().unwrap().parse().unwrap();
            let payload = store.read_blob(&d, None).unwrap();
            let sig = base64::engine::general_purpose::STANDARD
                .decode(l["annotations"][SIG_ANNOTATION].as_str().unwrap())
                .unwrap();
            (payload, sig)
        })
        .collect();
    (m, layers)
}

/// `openssl` verifies `sig` over `payload` with `public` (SHA-256 digest, or raw for Ed25519).
fn openssl_verifies(public: &Path, payload: &[u8], sig: &[u8], ed25519: bool) -> bool {
    let t = tempfile::tempdir().unwrap();
    let (p, s) = (t.path().join("payload"), t.path().join("sig"));
    std::fs::write(&p, payload).unwrap();
    std::fs::write(&s, sig).unwrap();
    let (pubk, pf, sf) = (
        public.to_str().unwrap(),
        p.to_str().unwrap(),
        s.to_str().unwrap(),
    );
    let args: Vec<&str> = if ed25519 {
        vec![
            "pkeyutl", "-verify", "-pubin", "-inkey", pubk, "-rawin", "-in", pf, "-sigfile", sf,
        ]
    } else {
        vec!["dgst", "-sha256", "-verify", pubk, "-signature", sf, pf]
    };
    tools::try_run("openssl", &args).is_ok_and(|o| o.contains("Verified"))
}

#[test]
fn completion_signs_in_cosigns_format() {
    tools::require("skopeo");
    let reg = Registry::plain();
    let host = reg.host();
    let digest = push_app(&reg, "apps/app");
    let root = Root::new();
    let cosign = root.path("var/build-secrets/cosign");
    let ec_pub = keypair(
        &cosign.join("key-a"),
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        Some("s3cret-Cosign-pw"),
    );
    let ed_pub = keypair(&cosign.join("key-b"), &["-algorithm", "ed25519"], None);
    let tag = format!("{host}/apps/app");
    report(&root, &tag, &digest);
    let args = [
        "-cosign-annotations=buildTimestamp=20260101.120000",
        "-cosign-annotations=buildNumber=7",
        "-cosign-annotations=team=a&b",
        &format!("-cosign-repositories=key-b={host}/sigs/app"),
        "-cosign-docker-media-types=key-b=1",
    ];
    let out = completion(&root, &args);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout(), "Build successful\n");
    assert_eq!(
        out.stderr(),
        format!("Pushing signature to: {host}/apps/app\nPushing signature to: sigs/app\n")
    );
    assert!(!out.all().contains("s3cret-Cosign-pw"));

    let want_payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{host}/apps/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":{{"buildNumber":"7","buildTimestamp":"20260101.120000","team":"a\u0026b"}}}}"#
    );

    // key-a: next to the image, OCI media types, ECDSA P-256 over SHA-256.
    let (m, layers) = signatures(&host, "apps/app", &digest);
    assert_eq!(m["mediaType"], media::OCI_MANIFEST);
    assert_eq!(m["config"]["mediaType"], media::OCI_CONFIG);
    assert_eq!(m["layers"][0]["mediaType"], SIMPLE_SIGNING);
    assert_eq!(layers.len(), 1);
    assert_eq!(
        String::from_utf8(layers[0].0.clone()).unwrap(),
        want_payload
    );
    assert!(openssl_verifies(&ec_pub, &layers[0].0, &layers[0].1, false));
    assert!(!openssl_verifies(&ed_pub, &layers[0].0, &layers[0].1, true));

    // key-b: COSIGN_REPOSITORY and COSIGN_DOCKER_MEDIA_TYPES, Ed25519.
    let (m, layers) = signatures(&host, "sigs/app", &digest);
    assert_eq!(m["mediaType"], media::DOCKER_MANIFEST);
    assert_eq!(m["config"]["mediaType"], media::DOCKER_CONFIG);
    assert_eq!(
        String::from_utf8(layers[0].0.clone()).unwrap(),
        want_payload
    );
    assert!(openssl_verifies(&ed_pub, &layers[0].0, &layers[0].1, true));
    // skopeo reads OCI signature images whole; it refuses the Docker variant's layer type,
    // as it does cosign's own.
    let cfg = tools::skopeo_inspect_config(
        &format!("docker://{host}/apps/app:{}.sig", digest.replace(':', "-")),
        &["--tls-verify=false"],
    );
    let (_, a_layers) = signatures(&host, "apps/app", &digest);
    assert_eq!(
        cfg["rootfs"]["diff_ids"][0].as_str().unwrap(),
        tools::sha256_bytes(&a_layers[0].0)
    );
    assert_eq!(cfg["history"][0]["created"], "0001-01-01T00:00:00Z");

    // Signing again with the same key and payload adds nothing (cosign's duplicate check);
    // a different payload is appended.
    let out = completion(&root, &args);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(signatures(&host, "apps/app", &digest).1.len(), 1);
    let out = completion(&root, &["-cosign-annotations=buildNumber=8"]);
    assert_eq!(out.code(), 0, "{out:?}");
    // (key-b has no COSIGN_REPOSITORY this time, so it signs next to the image too.)
    let (_, layers) = signatures(&host, "apps/app", &digest);
    assert_eq!(layers.len(), 3);
    assert!(String::from_utf8(layers[1].0.clone())
        .unwrap()
        .ends_with(r#""optional":{"buildNumber":"8"}}"#));
    assert!(openssl_verifies(&ec_pub, &layers[1].0, &layers[1].1, false));
    assert!(openssl_verifies(&ed_pub, &layers[2].0, &layers[2].1, true));
}

#[test]
fn cosign_errors_match_kpack() {
    let reg = Registry::plain();
    let host = reg.host();
    let digest = push_app(&reg, "app");
    let root = Root::new();
    report(&root, &format!("{host}/app"), &digest);
    let cosign = root.path("var/build-secrets/cosign");
    let last_line = |o: &kpack_util::Out| {
        o.stderr()
            .trim_end()
            .lines()
            .last()
            .unwrap_or("")
            .to_string()
    };

    // The directory exists with no secrets in it.
    std::fs::create_dir_all(&cosign).unwrap();
    let out = completion(&root, &[]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        last_line(&out).ends_with(" cosign sign: no keys found for cosign signing"),
        "{out:?}"
    );

    let out = completion(&root, &["-cosign-annotations=a=b=c"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        last_line(&out).ends_with(" argument not formatted as -arg=key=value: a=b=c"),
        "{out:?}"
    );

    std::fs::create_dir_all(cosign.join("empty")).unwrap();
    let out = completion(&root, &[]);
    assert!(
        last_line(&out).ends_with(
            " cosign sign: unable to sign image with /var/build-secrets/cosign/empty/cosign.key: \
             getting signer: reading key: open /var/build-secrets/cosign/empty/cosign.key: no such file or directory"
        ),
        "{out:?}"
    );
    std::fs::remove_dir(cosign.join("empty")).unwrap();

    keypair(
        &cosign.join("wrong-pw"),
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        Some("right-Password-1"),
    );
    std::fs::write(cosign.join("wrong-pw/cosign.password"), "wrong-Password-2").unwrap();
    let out = completion(&root, &[]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        last_line(&out).ends_with(
            " cosign sign: unable to sign image with /var/build-secrets/cosign/wrong-pw/cosign.key: \
             getting signer: reading key: decrypt: encrypted: decryption failed"
        ),
        "{out:?}"
    );
    assert!(!out.all().contains("Password"), "{out:?}");
    assert!(!root.path("tmp/termination-log").exists());
    std::fs::remove_dir_all(cosign.join("wrong-pw")).unwrap();

    keypair(
        &cosign.join("p384"),
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        None,
    );
    let out = completion(&root, &[]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(last_line(&out).contains("not supported yet"), "{out:?}");
}
