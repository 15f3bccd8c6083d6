//! The `recall` command (the server arrives with its own issue).

fn main() {
    eprintln!("recall: the server is not built yet");
    std::process::exit(2);
}
