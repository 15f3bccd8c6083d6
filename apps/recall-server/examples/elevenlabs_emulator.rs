//! A local emulator of the ElevenLabs Conversations API, for the import
//! benchmark (scripts/bench-import.sh): `N` finished inbound calls from
//! `N` callers, served on a free loopback port until killed.
//!
//! ```sh
//! cargo run --release -p recall-server --example elevenlabs_emulator -- 10000
//! # prints: http://127.0.0.1:PORT key=<the key to use>
//! ```

#[allow(dead_code)]
#[path = "../tests/import/emulator.rs"]
mod emulator;

use emulator::{Conversation, Emulator, Faults, KEY};

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let count: usize = match std::env::args().nth(1).map(|n| n.parse()) {
        None => 1_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("elevenlabs_emulator: the count of conversations: {e}");
            std::process::exit(2);
        }
    };
    let start = 1_768_000_000;
    let conversations = (0..count)
        .map(|i| {
            Conversation::call(
                &format!("conv_{i:06}"),
                "agent_bench",
                start + i as i64,
                &format!("+1612{i:07}"),
            )
        })
        .collect();
    let emulator = Emulator::start(conversations, Faults::default());
    println!("{} key={KEY}", emulator.url);
    // Serve until killed.
    std::future::pending::<()>().await;
}
