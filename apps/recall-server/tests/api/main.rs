//! The server over real HTTP: each test starts it in-process on port 0.

mod acknowledged;
mod admin;
mod auth;
mod config;
mod first_run;
mod helpers;
mod inputs;
mod lifecycle;
mod openapi;
mod postgres;
mod privacy;
mod resilience;
mod retention;
mod settings;
