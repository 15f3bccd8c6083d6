//! The ceiling of `scripts/bench-server.sh`: the smallest actix-web server
//! that answers every request (any method, any path) with a fixed
//! `200 Hello, world!`, built with the same actix-web, the same release
//! profile and the same worker default (one per core) as `recall`.
//!
//! ```sh
//! cargo run --release -p recall-server --example hello -- 127.0.0.1:8081
//! ```
//!
//! The address comes from the first argument, else `RECALL_BIND`, else
//! `127.0.0.1:8081`. Whatever the handler does not read of a request body
//! is drained by actix-web, so a POST costs it the same bytes on the wire as
//! a webhook call.

use actix_web::{App, HttpResponse, HttpServer, web};

async fn hello() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain")
        .body("Hello, world!")
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("RECALL_BIND").ok())
        .unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let server = HttpServer::new(|| App::new().default_service(web::to(hello))).bind(&bind)?;
    eprintln!("hello: listening on {bind}");
    server.run().await
}
