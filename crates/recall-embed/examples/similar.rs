//! `cargo run -p recall-embed --example similar [--model DIR] -- <query> <text>...`:
//! prints each text's cosine similarity to the query.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut dir = None;
    if args.first().map(String::as_str) == Some("--model") {
        dir = Some(PathBuf::from(args.remove(1)));
        args.remove(0);
    }
    let model = recall_embed::load(dir.as_deref())?;
    let (query, texts) = args
        .split_first()
        .ok_or("usage: similar [--model DIR] <query> <text>...")?;
    let q = model.embed(query)?;
    for text in texts {
        let t = model.embed(text)?;
        println!("{:>6.3}  {text}", q.cosine(&t).unwrap_or(f32::NAN));
    }
    Ok(())
}
