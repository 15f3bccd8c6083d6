//! A small stateful stand-in for an OpenMemory v1.3.0 server, served by
//! wiremock on loopback. It answers with the recorded shapes and keeps the
//! quirks the adapter must survive (see the fixtures' README):
//!
//! * `salience`, `decay_lambda` and a top-level `sector` in an add are
//!   ignored; `metadata.sector` is honoured;
//! * dedup is global: an add whose simhash equals any row's (any user)
//!   stores nothing and answers that row's id with `deduplicated: true`;
//!   a patch does not update the hash. The simhash is a line-by-line port
//!   of v1.3.0's `compute_simhash` (JavaScript's 32-bit shifts included),
//!   written apart from the adapter's own `ContentHash` so that each
//!   checks the other;
//! * query scores are z-scores over the survivors of a global top `3k`,
//!   the user filter is applied after it, and results are cached for
//!   ever (not invalidated by writes);
//! * `+` in a query string decodes to a space;
//! * get, patch and delete check the owner only when `user_id` is given;
//! * errors use `{"err"}`, `{"error"}` or plain text, as recorded.
//!
//! `tenant_bound` makes it behave like the newer releases that answer
//! `403 tenant_mismatch` to any `user_id`.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const SECTORS: [(&str, f64); 5] = [
    ("episodic", 0.015),
    ("semantic", 0.005),
    ("procedural", 0.008),
    ("emotional", 0.02),
    ("reflective", 0.001),
];

#[derive(Clone, Debug)]
struct Row {
    id: String,
    user_id: String,
    content: String,
    tags: Value,
    metadata: Value,
    created_at: i64,
    updated_at: i64,
    salience: f64,
    decay_lambda: f64,
    primary_sector: String,
    version: u64,
    words: BTreeSet<String>,
    simhash: String,
}

impl Row {
    fn item(&self) -> Value {
        json!({
            "id": self.id, "content": self.content, "tags": self.tags,
            "metadata": self.metadata, "created_at": self.created_at,
            "updated_at": self.updated_at, "last_seen_at": self.updated_at,
            "salience": self.salience, "decay_lambda": self.decay_lambda,
            "primary_sector": self.primary_sector, "version": self.version,
            "user_id": self.user_id,
        })
    }
}

#[derive(Default, Debug)]
struct State {
    rows: Vec<Row>,
    clock: i64,
    cache: HashMap<String, Value>,
    requests: usize,
    /// `POST /memory/add` answers: fresh rows and merges.
    adds: usize,
    merges: usize,
    /// Requests of a method to answer 503 before serving again.
    failures: HashMap<String, usize>,
}

/// The emulated server's behaviour and state.
#[derive(Clone, Debug)]
pub struct Emulator {
    state: Arc<Mutex<State>>,
    api_key: Option<String>,
    tenant_bound: bool,
}

impl Emulator {
    /// An empty server requiring `api_key` (if any).
    pub fn new(api_key: Option<&str>) -> Self {
        Self {
            state: Arc::default(),
            api_key: api_key.map(str::to_owned),
            tenant_bound: false,
        }
    }

    /// Behaves like a newer, tenant-bound release.
    pub fn tenant_bound(mut self) -> Self {
        self.tenant_bound = true;
        self
    }

    /// Starts a loopback server answering every request.
    pub async fn start(self) -> (MockServer, Self) {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(self.clone())
            .mount(&server)
            .await;
        (server, self)
    }

    /// The server-side rows of `user` as (content, metadata).
    pub fn rows_of(&self, user: &str) -> Vec<(String, Value)> {
        let state = self.state.lock().unwrap();
        state
            .rows
            .iter()
            .filter(|r| r.user_id == user)
            .map(|r| (r.content.clone(), r.metadata.clone()))
            .collect()
    }

    /// Answers the next `n` requests of `method` with 503.
    pub fn fail_next(&self, method: &str, n: usize) {
        self.state
            .lock()
            .unwrap()
            .failures
            .insert(method.to_owned(), n);
    }

    /// How many requests it answered.
    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }

    /// How many adds it answered with a new row and how many it merged
    /// into an existing one (`deduplicated: true`).
    pub fn adds(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap();
        (state.adds, state.merges)
    }
}

/// OpenMemory v1.3.0's synonym groups (`utils/text.ts`).
const SYN_GROUPS: [&[&str]; 13] = [
    &["prefer", "like", "love", "enjoy", "favor"],
    &["theme", "mode", "style", "layout"],
    &["meeting", "meet", "session", "call", "sync"],
    &["dark", "night", "black"],
    &["light", "bright", "day"],
    &["user", "person", "people", "customer"],
    &["task", "todo", "job"],
    &["note", "memo", "reminder"],
    &["time", "schedule", "when", "date"],
    &["project", "initiative", "plan"],
    &["issue", "problem", "bug"],
    &["document", "doc", "file"],
    &["question", "query", "ask"],
];

fn cmap(word: &str) -> Option<String> {
    SYN_GROUPS
        .iter()
        .find(|g| g.contains(&word))
        .map(|g| g[0].to_owned())
}

/// `stem`: the rules in order; the first whose result has 3+ characters.
fn js_stem(tok: &str) -> String {
    if tok.chars().count() <= 3 {
        return tok.to_owned();
    }
    let rules: [(&str, &str); 6] = [
        ("ies", "y"),
        ("ing", ""),
        ("ers", "er"), // /ers?$/ with the "s"
        ("er", "er"),  // /ers?$/ without it
        ("ed", ""),
        ("s", ""),
    ];
    let mut i = 0;
    while i < rules.len() {
        let (pat, rep) = rules[i];
        // "ers" and "er" are one rule: if "ers" matched, skip "er".
        let matched = tok.ends_with(pat);
        if matched {
            let st = format!("{}{}", &tok[..tok.len() - pat.len()], rep);
            if st.chars().count() >= 3 {
                return st;
            }
        }
        i += if pat == "ers" && matched { 2 } else { 1 };
    }
    tok.to_owned()
}

/// `canonical_token_set`: tokens of `/[a-z0-9]+/gi`, lower-cased,
/// canonicalised, of more than one character.
fn js_token_set(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() {
            cur.push(c);
            continue;
        }
        if !cur.is_empty() {
            let low = cur.to_ascii_lowercase();
            let can = cmap(&low).unwrap_or_else(|| {
                let st = js_stem(&low);
                cmap(&st).unwrap_or(st)
            });
            if can.len() > 1 && !out.contains(&can) {
                out.push(can);
            }
            cur.clear();
        }
    }
    out
}

/// `compute_simhash`, as JavaScript runs it.
pub fn simhash(text: &str) -> String {
    let mut vec = [0i64; 64];
    for t in js_token_set(text) {
        let mut h: i32 = 0;
        for unit in t.encode_utf16() {
            // `h = (h << 5) - h + t.charCodeAt(i); h = h & h;`
            h = (h << 5).wrapping_sub(h).wrapping_add(i32::from(unit));
        }
        for (i, v) in vec.iter_mut().enumerate() {
            // JavaScript masks a shift count to 5 bits.
            if h & (1i32 << (i % 32)) != 0 {
                *v += 1;
            } else {
                *v -= 1;
            }
        }
    }
    let mut hash = String::new();
    for i in (0..64).step_by(4) {
        let nibble = (if vec[i] > 0 { 8 } else { 0 })
            + (if vec[i + 1] > 0 { 4 } else { 0 })
            + (if vec[i + 2] > 0 { 2 } else { 0 })
            + (if vec[i + 3] > 0 { 1 } else { 0 });
        hash.push_str(&format!("{nibble:x}"));
    }
    hash
}

/// `hamming_dist` over the hex strings.
fn hamming(a: &str, b: &str) -> u32 {
    a.chars()
        .zip(b.chars())
        .map(|(x, y)| (x.to_digit(16).unwrap_or(0) ^ y.to_digit(16).unwrap_or(0)).count_ones())
        .sum()
}

/// The canonical word set: lower case, split on non-alphanumerics, a
/// crude stem, a few synonyms merged; order ignored.
fn words(text: &str) -> BTreeSet<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let w = match w {
                "likes" | "loves" | "enjoys" | "prefers" | "like" | "love" | "enjoy" => "prefer",
                other => other,
            };
            let w = w.strip_suffix('s').filter(|s| s.len() >= 3).unwrap_or(w);
            w.to_owned()
        })
        .collect()
}

fn json_body(req: &Request) -> Option<Value> {
    let is_json = req
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if !is_json {
        return None;
    }
    serde_json::from_slice(&req.body).ok()
}

fn err(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

fn not_found_text() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_raw("404: Not Found", "")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn query_param(req: &Request, key: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn sector_of(metadata: &Value) -> &'static str {
    let wanted = metadata.get("sector").and_then(Value::as_str);
    SECTORS
        .iter()
        .find(|(s, _)| Some(*s) == wanted)
        .map_or("semantic", |(s, _)| s)
}

fn decay_of(sector: &str) -> f64 {
    SECTORS
        .iter()
        .find(|(s, _)| *s == sector)
        .map_or(0.005, |(_, d)| *d)
}

impl Respond for Emulator {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap();
        state.requests += 1;
        let path = req.url.path().to_owned();
        let segments: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(|s| {
                url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            })
            .collect();
        let method = req.method.as_str().to_owned();
        if let Some(left) = state.failures.get_mut(&method)
            && *left > 0
        {
            *left -= 1;
            return err(503, json!({"err": "busy"}));
        }
        if method == "OPTIONS" {
            return ResponseTemplate::new(200);
        }
        if !path.starts_with("/health")
            && let Some(key) = &self.api_key
        {
            let given = req
                .headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .or_else(|| {
                    req.headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| {
                            v.strip_prefix("Bearer ")
                                .or_else(|| v.strip_prefix("ApiKey "))
                                .map(str::to_owned)
                        })
                });
            match given {
                None => {
                    return err(
                        401,
                        json!({"error": "authentication_required", "message": "API key required"}),
                    );
                }
                Some(g) if &g != key => return err(403, json!({"error": "invalid_api_key"})),
                Some(_) => {}
            }
        }
        let body = json_body(req);
        if self.tenant_bound {
            let supplied = query_param(req, "user_id").is_some()
                || body.as_ref().is_some_and(|b| {
                    b.get("user_id").is_some() || b.pointer("/filters/user_id").is_some()
                });
            if supplied {
                return err(
                    403,
                    json!({"error": "tenant_mismatch", "message": "user_id does not match authenticated tenant; user_id is derived from the API key and must not be supplied or must equal the tenant"}),
                );
            }
        }
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (method.as_str(), segs.as_slice()) {
            ("GET", ["health"]) => ResponseTemplate::new(200).set_body_json(json!({
                "ok": true, "version": "2.0-hsg-tiered",
                "embedding": {"provider": "synthetic", "dimensions": 1536},
                "tier": "hybrid", "dim": 1536, "cache": 3,
            })),
            ("POST", ["memory", "add"]) => add(&mut state, body),
            ("POST", ["memory", "query"]) => query(&mut state, body),
            ("GET", ["memory", "all"]) => {
                let user = query_param(req, "user_id");
                let l: usize = query_param(req, "l")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(100);
                let u: usize = query_param(req, "u")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut rows: Vec<&Row> = state
                    .rows
                    .iter()
                    .filter(|r| user.as_ref().is_none_or(|u| &r.user_id == u))
                    .collect();
                rows.sort_by_key(|r| std::cmp::Reverse(r.created_at));
                let items: Vec<Value> = rows.into_iter().skip(u).take(l).map(Row::item).collect();
                ResponseTemplate::new(200).set_body_json(json!({ "items": items }))
            }
            ("GET", ["memory", id]) => {
                let user = query_param(req, "user_id");
                match state.rows.iter().find(|r| r.id == *id) {
                    None => err(404, json!({"err": "nf"})),
                    Some(r) if user.as_ref().is_some_and(|u| *u != r.user_id) => {
                        err(403, json!({"err": "forbidden"}))
                    }
                    Some(r) => {
                        let mut item = r.item();
                        item["sectors"] = json!([r.primary_sector]);
                        ResponseTemplate::new(200).set_body_json(item)
                    }
                }
            }
            ("PATCH", ["memory", id]) => {
                let Some(b) = body else {
                    return err(500, json!({"err": "internal"}));
                };
                let clock = tick(&mut state);
                let user = b.get("user_id").and_then(Value::as_str).map(str::to_owned);
                let Some(r) = state.rows.iter_mut().find(|r| r.id == *id) else {
                    return err(404, json!({"err": "nf"}));
                };
                if user.as_ref().is_some_and(|u| *u != r.user_id) {
                    return err(403, json!({"err": "forbidden"}));
                }
                if let Some(c) = b.get("content").and_then(Value::as_str) {
                    r.content = c.to_owned();
                }
                if let Some(t) = b.get("tags") {
                    r.tags = t.clone();
                }
                if let Some(m) = b.get("metadata") {
                    r.metadata = m.clone();
                }
                r.primary_sector = sector_of(&r.metadata).to_owned();
                r.version += 1;
                r.updated_at = clock;
                ResponseTemplate::new(200).set_body_json(json!({"id": r.id, "updated": true}))
            }
            ("DELETE", ["memory", id]) => {
                let user = query_param(req, "user_id").or_else(|| {
                    body.as_ref()
                        .and_then(|b| b.get("user_id"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                });
                match state.rows.iter().position(|r| r.id == *id) {
                    None => err(404, json!({"err": "nf"})),
                    Some(at) if user.as_ref().is_some_and(|u| *u != state.rows[at].user_id) => {
                        err(403, json!({"err": "forbidden"}))
                    }
                    Some(at) => {
                        state.rows.remove(at);
                        ResponseTemplate::new(200).set_body_json(json!({"ok": true}))
                    }
                }
            }
            ("DELETE", ["users", user, "memories"]) => {
                let mut deleted = 0u64;
                state.rows.retain(|r| {
                    if r.user_id == *user && deleted < 10_000 {
                        deleted += 1;
                        false
                    } else {
                        true
                    }
                });
                ResponseTemplate::new(200).set_body_json(json!({"ok": true, "deleted": deleted}))
            }
            _ => not_found_text(),
        }
    }
}

fn tick(state: &mut State) -> i64 {
    state.clock = (state.clock + 1).max(now_ms());
    state.clock
}

fn add(state: &mut State, body: Option<Value>) -> ResponseTemplate {
    let Some(b) = body else {
        return err(400, json!({"err": "content"}));
    };
    let content = match b.get("content").and_then(Value::as_str) {
        Some(c) if !c.is_empty() => c.to_owned(),
        _ => return err(400, json!({"err": "content"})),
    };
    let words = words(&content);
    let hash = simhash(&content);
    // `select * … where simhash = ? order by salience desc limit 1`.
    let existing = state
        .rows
        .iter_mut()
        .filter(|r| r.simhash == hash)
        .max_by(|a, b| a.salience.total_cmp(&b.salience));
    if let Some(r) = existing
        && hamming(&hash, &r.simhash) <= 3
    {
        r.salience = (r.salience + 0.15).min(1.0);
        state.merges += 1;
        return ResponseTemplate::new(200).set_body_json(json!({
            "id": r.id, "primary_sector": r.primary_sector,
            "sectors": [r.primary_sector], "deduplicated": true,
        }));
    }
    let metadata = b.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let sector = sector_of(&metadata);
    let clock = tick(state);
    let id = uuid::Uuid::new_v4().to_string();
    state.adds += 1;
    state.rows.push(Row {
        id: id.clone(),
        user_id: b
            .get("user_id")
            .and_then(Value::as_str)
            .unwrap_or("anonymous")
            .to_owned(),
        content,
        tags: b.get("tags").cloned().unwrap_or_else(|| json!([])),
        metadata,
        created_at: clock,
        updated_at: clock,
        salience: 0.4,
        decay_lambda: decay_of(sector),
        primary_sector: sector.to_owned(),
        version: 1,
        words,
        simhash: hash,
    });
    ResponseTemplate::new(200).set_body_json(json!({
        "id": id, "primary_sector": sector, "sectors": [sector], "chunks": 1,
    }))
}

fn query(state: &mut State, body: Option<Value>) -> ResponseTemplate {
    // The real server exits on a body it cannot parse (fixtures 69, 70);
    // an emulator cannot, so it answers 500 and the test fails loudly.
    let Some(b) = body else {
        return err(
            500,
            json!({"err": "emulator: the real server would have crashed"}),
        );
    };
    let cache_key = json!([
        b.get("query"),
        b.get("k"),
        b.get("filters"),
        b.get("user_id")
    ])
    .to_string();
    if let Some(cached) = state.cache.get(&cache_key) {
        return ResponseTemplate::new(200).set_body_json(cached.clone());
    }
    let Some(text) = b.get("query").and_then(Value::as_str) else {
        return ResponseTemplate::new(200).set_body_json(json!({"matches": []}));
    };
    let k = b.get("k").and_then(Value::as_u64).unwrap_or(8) as usize;
    let user = b
        .pointer("/filters/user_id")
        .or_else(|| b.get("user_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let sector = b.pointer("/filters/sector").and_then(Value::as_str);
    let q = words(text);
    let mut scored: Vec<(f64, usize)> = state
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| sector.is_none_or(|s| r.primary_sector == s))
        .map(|(i, r)| {
            let common = q.intersection(&r.words).count() as f64;
            let norm = ((q.len() * r.words.len()) as f64).sqrt().max(1.0);
            (common / norm, i)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.truncate(3 * k);
    let survivors: Vec<(f64, usize)> = scored
        .into_iter()
        .filter(|(_, i)| user.as_ref().is_none_or(|u| state.rows[*i].user_id == *u))
        .take(k)
        .collect();
    let n = survivors.len() as f64;
    let mean = survivors.iter().map(|s| s.0).sum::<f64>() / n.max(1.0);
    let sd = (survivors.iter().map(|s| (s.0 - mean).powi(2)).sum::<f64>() / n.max(1.0)).sqrt();
    let mut matches = Vec::new();
    for (sim, i) in survivors {
        let r = &mut state.rows[i];
        r.salience = (r.salience + 0.5).min(1.0);
        let z = if sd > 0.0 { (sim - mean) / sd } else { 0.0 };
        matches.push(json!({
            "id": r.id, "content": r.content, "score": z,
            "sectors": [r.primary_sector], "primary_sector": r.primary_sector,
            "path": [r.id], "salience": r.salience, "last_seen_at": r.updated_at,
        }));
    }
    let answer = json!({"query": text, "matches": matches});
    state.cache.insert(cache_key, answer.clone());
    ResponseTemplate::new(200).set_body_json(answer)
}
