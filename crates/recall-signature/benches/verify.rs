//! Verification cost against the raw HMAC it is built on.
//!
//! For each body size: `raw_hmac` is `ring::hmac::sign` over the exact
//! signed message (`"<t>.<body>"`, built beforehand, key prepared
//! beforehand); `verify` is [`Verifier::verify`] of the same body with its
//! header (parse, time check, HMAC, constant-time compare); `streaming` is
//! the same fed in 64 KiB chunks. `empty_body` isolates the fixed cost
//! verification adds to the HMAC.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use recall_signature::{Secret, SignatureHeader, Verifier, sign};
use ring::hmac;

const SECRET: &str = "wsec_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const NOW: u64 = 1_739_537_297;

fn bench_sizes(c: &mut Criterion) {
    let secret = Secret::new(SECRET).expect("valid secret");
    let verifier = Verifier::new(secret.clone());
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());

    for (label, size) in [("4KiB", 4 * 1024), ("1MiB", 1024 * 1024)] {
        let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let header = sign(&body, &secret, NOW);
        let mut message = format!("{NOW}.").into_bytes();
        message.extend_from_slice(&body);

        let mut group = c.benchmark_group(format!("signature/{label}"));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function("raw_hmac", |b| {
            b.iter(|| hmac::sign(black_box(&key), black_box(&message)));
        });
        group.bench_function("verify", |b| {
            b.iter(|| {
                verifier
                    .verify(black_box(header.as_str()), black_box(&body), NOW)
                    .expect("verifies")
            });
        });
        group.bench_function("streaming_64KiB_chunks", |b| {
            b.iter(|| {
                let mut streaming = verifier
                    .start(black_box(header.as_str()), NOW)
                    .expect("starts");
                for chunk in black_box(&body).chunks(64 * 1024) {
                    streaming.update(chunk);
                }
                streaming.finish().expect("verifies")
            });
        });
        group.finish();
    }
}

/// The fixed cost verification adds to the HMAC, isolated on an empty body:
/// header parsing, the time check, the HMAC key state copy and the
/// constant-time comparison.
fn bench_fixed_cost(c: &mut Criterion) {
    let secret = Secret::new(SECRET).expect("valid secret");
    let verifier = Verifier::new(secret.clone());
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    let header = sign(b"", &secret, NOW);
    let message = format!("{NOW}.").into_bytes();

    let mut group = c.benchmark_group("signature/empty_body");
    group.bench_function("raw_hmac", |b| {
        b.iter(|| hmac::sign(black_box(&key), black_box(&message)));
    });
    group.bench_function("parse_header_only", |b| {
        b.iter(|| SignatureHeader::parse(black_box(header.as_str())).expect("parses"));
    });
    group.bench_function("verify", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(header.as_str()), black_box(b""), NOW)
                .expect("verifies")
        });
    });
    group.finish();
}

criterion_group!(benches, bench_fixed_cost, bench_sizes);
criterion_main!(benches);
