//! The dashboard's files, embedded in the binary at build time (no Node.js
//! or bundler involved).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use crate::routes::method_not_allowed;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The dashboard's Content-Security-Policy: its own files only, no inline
/// script, nothing from elsewhere; `blob:` for the call audio it fetches.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; media-src 'self' blob:; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    // A wrong method gets the same JSON 405, with `Allow`, as every route.
    let resource = |path: &str| web::resource(path).default_service(method_not_allowed("GET"));
    cfg.service(resource("/dashboard").route(web::get().to(index)))
        .service(resource("/dashboard/").route(web::get().to(index)))
        .service(resource("/dashboard/app.js").route(web::get().to(app_js)))
        .service(resource("/dashboard/app.css").route(web::get().to(app_css)));
}

fn file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .insert_header((
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .body(body)
}

async fn index() -> HttpResponse {
    file("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> HttpResponse {
    file("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> HttpResponse {
    file("text/css; charset=utf-8", APP_CSS)
}
