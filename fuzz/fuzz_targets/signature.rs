//! The `ElevenLabs-Signature` header parser and the verifier behind it.
//!
//! Input: `<header value>\n<body>` (the seeds are the signature vectors of
//! the shared fixtures). Invariants checked, beyond "never panics":
//! * a header that parses formats back (`t=<as sent>,v0=<hex>...`) to a
//!   header that parses to the same value;
//! * the verifier accepts exactly when one `v0=` of the header is the
//!   HMAC-SHA256 of `"<t as sent>.<body>"` under the secret, computed here
//!   independently with `ring` — it never accepts a body whose MAC does
//!   not verify;
//! * verifying the body streamed in two chunks gives the same answer;
//! * `sign` produces a header the verifier accepts for that body, and
//!   refuses for the body with one byte changed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recall_signature::{Secret, SignatureError, SignatureHeader, Verifier, sign};
use ring::hmac;

const SECRET: &str = "wsec_test_secret";

fuzz_target!(|data: &[u8]| {
    let (header_bytes, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(header) = std::str::from_utf8(header_bytes) else {
        return;
    };
    let secret = Secret::new(SECRET).unwrap();
    let verifier = Verifier::new(secret.clone());
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());

    let parsed = SignatureHeader::parse(header);
    let now = match &parsed {
        Ok(h) => h.timestamp(),
        Err(_) => 1_739_537_297,
    };
    let verdict = verifier.verify(header, body, now);

    match &parsed {
        Err(e) => {
            // The verifier refuses for the same reason.
            assert_eq!(verdict.as_ref().err(), Some(e), "{header:?}");
            if header.trim().is_empty() {
                assert_eq!(*e, SignatureError::MissingHeader);
            } else {
                assert!(matches!(e, SignatureError::MalformedHeader(_)), "{e:?}");
            }
        }
        Ok(h) => {
            assert!(!h.signatures().is_empty());
            // The `t=` text exactly as sent: the only `t` part, trimmed.
            let t_text = header
                .split(',')
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim() == "t")
                .map(|(_, v)| v.trim())
                .expect("a parsed header has a t= part");
            assert_eq!(
                t_text.trim_start_matches('0').parse::<u64>().unwrap_or(0),
                h.timestamp()
            );

            // Round trip through the canonical form.
            let mut canonical = format!("t={t_text}");
            for sig in h.signatures() {
                canonical.push_str(",v0=");
                canonical.push_str(&hex::encode(sig));
            }
            assert_eq!(
                SignatureHeader::parse(&canonical).as_ref(),
                Ok(h),
                "{canonical}"
            );

            // Accepts iff a v0 is the MAC of the text as sent.
            let mut message = Vec::with_capacity(t_text.len() + 1 + body.len());
            message.extend_from_slice(t_text.as_bytes());
            message.push(b'.');
            message.extend_from_slice(body);
            let tag = hmac::sign(&key, &message);
            let matches = h.signatures().iter().any(|s| s[..] == *tag.as_ref());
            match &verdict {
                Ok(v) => {
                    assert!(matches, "accepted a body whose MAC does not verify");
                    assert_eq!(v.timestamp(), h.timestamp());
                    assert_eq!(v.secret_index(), 0);
                }
                Err(e) => {
                    assert!(!matches, "refused a correctly signed body: {e}");
                    assert_eq!(*e, SignatureError::NoMatchingSignature);
                }
            }

            // Streaming in two chunks changes nothing.
            let split = usize::from(data[0]) % (body.len() + 1);
            let mut streaming = verifier
                .start(header, now)
                .expect("the header was accepted");
            streaming.update(&body[..split]);
            streaming.update(&body[split..]);
            assert_eq!(streaming.body_len(), body.len() as u64);
            assert_eq!(streaming.finish(), verdict);
        }
    }

    // What we sign, we accept; one changed byte, we refuse.
    let t = now;
    let signed = sign(body, &secret, t);
    assert!(
        verifier.verify(signed.as_str(), body, t).is_ok(),
        "{signed}"
    );
    if !body.is_empty() {
        let mut tampered = body.to_vec();
        let i = usize::from(data[0]) % tampered.len();
        tampered[i] ^= 0x01;
        assert_eq!(
            verifier.verify(signed.as_str(), &tampered, t),
            Err(SignatureError::NoMatchingSignature)
        );
    }
});
