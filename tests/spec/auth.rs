//! Connection tokens (PROTOCOL.md *Authentication*): with `AUTH_JWT_SECRET` or
//! `AUTH_JWT_PUBLIC_KEY_FILE` set, every `/ws` connection needs a JWT (`?token=` or
//! `Authorization: Bearer`), checked before the upgrade (`401` JSON otherwise);
//! `welcome` says who the connection is and when its token expires; the token's `rooms`
//! bound `join` and `say` (`forbidden`); its `name` wins over `?name=`; `refresh`
//! replaces the token (`refreshed`, or `bad_token`); a token that expires unrefreshed
//! closes its connection with 4001; members carry their `user`, and `first`/`last`
//! follow it across connections. No token ever reaches the log.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hubbub::{
    auth::{AuthKey, PublicKey},
    config::{Config, Secret},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};

use crate::{
    config::{run_to_exit, Binary},
    helpers::{spawn_app, spawn_app_with, Client, TestApp, DEADLINE},
    log_capture::Capture,
};

/// The spec's HS256 secret (32 bytes and more, as `AUTH_JWT_SECRET` must be).
pub(crate) const SECRET: &str = "the-spec-binary-token-secret-0123456789";

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// Claims for `sub` that expire `ttl_seconds` from now (a whole second, as tokens
/// usually have).
fn claims(sub: &str, ttl_seconds: u64) -> Value {
    json!({"sub": sub, "exp": now_seconds() as u64 + ttl_seconds})
}

/// `claims` signed with the spec's secret.
fn token(claims: &Value) -> String {
    signed(SECRET.as_bytes(), Algorithm::HS256, claims)
}

fn signed(secret: &[u8], algorithm: Algorithm, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("test claims sign")
}

fn key_file(name: &str) -> String {
    format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A token with this header and these claims and signature, whatever they are.
fn forged(header: Value, claims: &Value, signature: &str) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let part = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}.{signature}", part(&header), part(claims))
}

/// A server checking tokens with the spec's secret, `adjust`ed further.
pub(crate) async fn spawn_with_auth(adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with(|config| {
        config.auth_key = Some(AuthKey::Secret(Secret::new(SECRET)));
        adjust(config);
    })
    .await
}

/// Opens `/ws` with `query` and an optional `Authorization` header; the client after
/// `welcome`, or the refusal's status, body and `WWW-Authenticate`.
async fn open(
    app: &TestApp,
    query: &str,
    authorization: Option<&str>,
) -> Result<Client, (u16, Value, Option<String>)> {
    let mut request = app
        .ws_url(&format!("/ws{query}"))
        .into_client_request()
        .expect("a valid URL");
    if let Some(value) = authorization {
        request.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(value).expect("a header value"),
        );
    }
    let attempt = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(request))
        .await
        .expect("an answer to the upgrade in time");
    match attempt {
        Ok((socket, _)) => {
            let mut client = Client {
                socket,
                id: String::new(),
                name: String::new(),
                welcome: Value::Null,
            };
            let welcome = client.expect("welcome").await;
            client.id = welcome["id"].as_str().expect("an id").to_owned();
            client.name = welcome["name"].as_str().expect("a name").to_owned();
            client.welcome = welcome;
            Ok(client)
        }
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let challenge = response
                .headers()
                .get("WWW-Authenticate")
                .map(|value| value.to_str().unwrap_or_default().to_owned());
            let body = response
                .body()
                .as_deref()
                .and_then(|body| serde_json::from_slice(body).ok())
                .unwrap_or(Value::Null);
            Err((status, body, challenge))
        }
        Err(other) => panic!("expected an upgrade or an HTTP refusal, got {other}"),
    }
}

/// Connects with `?token=` (after `query`, which starts with `&` or is empty).
pub(crate) async fn connect_with(app: &TestApp, token: &str, query: &str) -> Client {
    match open(app, &format!("?token={token}{query}"), None).await {
        Ok(client) => client,
        Err(refusal) => panic!("the token was refused: {refusal:?}"),
    }
}

/// A member of `room` whose token is for `sub` (who is also its name).
async fn member(app: &TestApp, sub: &str, room: &str) -> Client {
    let mut client = connect_with(
        app,
        &token(&claims(sub, 600)),
        &format!("&name={sub}&room={room}"),
    )
    .await;
    client.expect("joined").await;
    client
}

/// The upgrade must be refused with 401 JSON whose message contains `says`.
async fn expect_unauthorized(app: &TestApp, query: &str, authorization: Option<&str>, says: &str) {
    match open(app, query, authorization).await {
        Ok(client) => panic!("{query} / {authorization:?} was let in: {}", client.welcome),
        Err((status, body, challenge)) => {
            assert_eq!(status, 401, "{says}: {body}");
            assert_eq!(body["error"], "unauthorized", "{says}: {body}");
            let message = body["message"].as_str().unwrap_or_default();
            assert!(message.contains(says), "expected {says:?} in {message:?}");
            assert_eq!(challenge.as_deref(), Some("Bearer"), "{says}");
        }
    }
}

/// The RFC 3339 text of a whole second, as the wire writes timestamps.
fn rfc3339(seconds: u64) -> String {
    chrono::DateTime::from_timestamp(seconds as i64, 0)
        .expect("a time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `hubbub_upgrades_refused_total{cause="unauthorized"}` now.
async fn unauthorized_refusals(app: &TestApp) -> f64 {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("a body");
    text.lines()
        .find_map(|line| {
            line.strip_prefix(r#"hubbub_upgrades_refused_total{cause="unauthorized"} "#)
        })
        .expect("the unauthorized series")
        .trim()
        .parse()
        .expect("a number")
}

// ------------------------------------------------------------------- the handshake

#[actix_web::test]
async fn a_good_token_in_the_query_or_a_bearer_header_connects_as_its_user() {
    let app = spawn_with_auth(|_| {}).await;
    let claims = claims("user-7", 600);
    let exp = claims["exp"].as_u64().unwrap();

    let by_query = connect_with(&app, &token(&claims), "&name=ann").await;
    assert_eq!(by_query.welcome["user"], "user-7", "{}", by_query.welcome);
    assert_eq!(by_query.welcome["expires_at"], rfc3339(exp));
    assert_eq!(by_query.name, "ann", "without a name claim, ?name= stands");

    let by_header = open(&app, "", Some(&format!("Bearer {}", token(&claims))))
        .await
        .expect("a bearer header is as good");
    assert_eq!(by_header.welcome["user"], "user-7");
    assert_ne!(by_header.id, by_query.id, "two connections of one user");

    // The token's name wins over ?name=, and an invalid ?name= is then no error.
    let named = json!({"sub": "user-7", "exp": exp, "name": "Ann from the token"});
    let mut client = connect_with(&app, &token(&named), &format!("&name={}", "%01")).await;
    assert_eq!(client.name, "Ann from the token");
    client.sync().await;

    // /echo needs no token.
    let mut echo = Client::open(&app.ws_url("/echo")).await;
    echo.send_text("hi").await;
    assert_eq!(echo.next_message().await, tungstenite::Message::text("hi"));
}

#[actix_web::test]
async fn every_kind_of_bad_token_is_a_401_json_answer_before_the_upgrade() {
    let app = spawn_with_auth(|_| {}).await;
    let now = now_seconds() as u64;
    let good = claims("ann", 600);
    let before = unauthorized_refusals(&app).await;
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "needs a token"),
        ("?token=".into(), "needs a token"),
        ("?token=garbage".into(), "not a JWT"),
        ("?token=a.b.c".into(), "not a JWT"),
        (
            format!(
                "?token={}",
                signed(
                    b"another-secret-another-secret-0123",
                    Algorithm::HS256,
                    &good
                )
            ),
            "signature",
        ),
        (
            format!(
                "?token={}",
                signed(SECRET.as_bytes(), Algorithm::HS384, &good)
            ),
            "not signed with HS256",
        ),
        (
            format!("?token={}", forged(json!({"alg": "none"}), &good, "")),
            "not signed with HS256",
        ),
        (
            format!("?token={}", token(&json!({"sub": "ann", "exp": now - 60}))),
            "expired",
        ),
        (
            format!(
                "?token={}",
                token(&json!({"sub": "ann", "exp": now + 600, "nbf": now + 300}))
            ),
            "not valid yet",
        ),
        (
            format!("?token={}", token(&json!({"exp": now + 600}))),
            "no sub claim",
        ),
        (
            format!("?token={}", token(&json!({"sub": "ann"}))),
            "no exp claim",
        ),
        (
            format!("?token={}", token(&json!({"sub": 7, "exp": now + 600}))),
            "sub claim",
        ),
        (
            format!(
                "?token={}",
                token(&json!({"sub": "ann", "exp": now + 600, "rooms": "lobby"}))
            ),
            "rooms claim",
        ),
        (
            format!(
                "?token={}",
                token(&json!({"sub": "ann", "exp": now + 600, "rooms": [1, 2]}))
            ),
            "rooms claim",
        ),
        (
            format!(
                "?token={}",
                token(&json!({"sub": "ann", "exp": now + 600, "pad": "x".repeat(5000)}))
            ),
            "longer than the 4096 bytes",
        ),
    ];
    let count = cases.len();
    for (query, says) in &cases {
        expect_unauthorized(&app, query, None, says).await;
    }
    // In the header the same, and both at once is refused as ambiguous.
    expect_unauthorized(&app, "", Some("Bearer garbage"), "not a JWT").await;
    let bearer = format!("Bearer {}", token(&good));
    let query = format!("?token={}", token(&good));
    expect_unauthorized(&app, &query, Some(&bearer), "two tokens").await;
    // Another scheme is not a token.
    expect_unauthorized(&app, "", Some("Basic YW5uOnB3"), "needs a token").await;

    assert_eq!(
        unauthorized_refusals(&app).await - before,
        (count + 3) as f64,
        "each refusal is counted"
    );
    assert_eq!(app.controller.open_connections(), 0, "none was let in");
}

#[actix_web::test]
async fn a_plain_get_with_a_token_answers_what_its_upgrade_would_meet() {
    // A browser cannot read a refused upgrade's answer; the page asks this way instead.
    let app = spawn_with_auth(|_| {}).await;
    let (status, body) = app.get("/ws?token=garbage").await;
    assert_eq!(
        (status, &body["error"]),
        (401, &json!("unauthorized")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("not a JWT"),
        "{body}"
    );
    let (status, body) = app.get("/ws").await;
    assert_eq!(status, 401, "{body}");
    // A good token passes; then the request is no upgrade.
    let (status, body) = app
        .get(&format!("/ws?token={}", token(&claims("ann", 600))))
        .await;
    assert_eq!(status, 426, "{body}");
    // Without authentication, nothing changes: not an upgrade.
    let open = spawn_app().await;
    assert_eq!(open.get("/ws?token=garbage").await.0, 426);
}

#[actix_web::test]
async fn auth_token_max_bytes_caps_the_token_length() {
    let app = spawn_with_auth(|config| config.auth_token_max_bytes = 512).await;
    let mut padded = claims("ann", 600);
    padded["pad"] = json!("x".repeat(400));
    let long = token(&padded);
    assert!(long.len() > 512, "{}", long.len());
    expect_unauthorized(&app, &format!("?token={long}"), None, "512 bytes").await;
    let mut short = connect_with(&app, &token(&claims("ann", 600)), "").await;
    short.sync().await;

    // The same token under the default cap is fine.
    let roomy = spawn_with_auth(|_| {}).await;
    connect_with(&roomy, &long, "").await.sync().await;
}

#[actix_web::test]
async fn rs256_and_es256_keys_verify_their_tokens_and_refuse_algorithm_confusion() {
    for (public, private, other, algorithm) in [
        (
            "rsa-public.pem",
            "rsa-private.pem",
            "rsa-other-private.pem",
            Algorithm::RS256,
        ),
        (
            "ec-public.pem",
            "ec-private.pem",
            "ec-other-private.pem",
            Algorithm::ES256,
        ),
    ] {
        let public_pem = std::fs::read(key_file(public)).expect("the test key");
        let app = spawn_app_with(|config| {
            let key = PublicKey::from_pem(&public_pem).expect("a good key");
            config.auth_key = Some(AuthKey::PublicKey(key));
        })
        .await;
        let signing_key = |file: &str| {
            let private_pem = std::fs::read(key_file(file)).expect("the test key");
            match algorithm {
                Algorithm::RS256 => EncodingKey::from_rsa_pem(&private_pem),
                _ => EncodingKey::from_ec_pem(&private_pem),
            }
            .expect("a signing key")
        };
        let good = claims("ann", 600);
        let token =
            jsonwebtoken::encode(&Header::new(algorithm), &good, &signing_key(private)).unwrap();
        let client = connect_with(&app, &token, "").await;
        assert_eq!(client.welcome["user"], "ann", "{public}");

        let expected = format!("not signed with {algorithm:?}");
        // HS256 with the public key (its PEM text) as the shared secret.
        let confused = signed(&public_pem, Algorithm::HS256, &good);
        expect_unauthorized(&app, &format!("?token={confused}"), None, &expected).await;
        let unsigned = forged(json!({"alg": "none", "typ": "JWT"}), &good, "");
        expect_unauthorized(&app, &format!("?token={unsigned}"), None, &expected).await;
        // A shared-secret token where a key pair is configured: the wrong algorithm.
        let hs = signed(SECRET.as_bytes(), Algorithm::HS256, &good);
        expect_unauthorized(&app, &format!("?token={hs}"), None, &expected).await;
        // The right algorithm, another key of the same kind: a bad signature.
        let foreign =
            jsonwebtoken::encode(&Header::new(algorithm), &good, &signing_key(other)).unwrap();
        expect_unauthorized(&app, &format!("?token={foreign}"), None, "signature").await;
    }
}

#[actix_web::test]
async fn a_bad_token_setting_stops_the_binary_naming_it_and_never_showing_the_secret() {
    let (private, public) = (key_file("rsa-private.pem"), key_file("rsa-public.pem"));
    let short = "a-secret-of-31-bytes-0123456789";
    let cases: [(&[(&str, &str)], &str); 7] = [
        (&[("AUTH_JWT_SECRET", short)], "AUTH_JWT_SECRET"),
        (
            &[("AUTH_JWT_PUBLIC_KEY_FILE", "/nonexistent/key.pem")],
            "AUTH_JWT_PUBLIC_KEY_FILE",
        ),
        (
            &[("AUTH_JWT_PUBLIC_KEY_FILE", private.as_str())],
            "AUTH_JWT_PUBLIC_KEY_FILE",
        ),
        (
            &[("AUTH_JWT_PUBLIC_KEY_FILE", &key_file("README.md"))],
            "AUTH_JWT_PUBLIC_KEY_FILE",
        ),
        (
            &[
                ("AUTH_JWT_SECRET", SECRET),
                ("AUTH_JWT_PUBLIC_KEY_FILE", public.as_str()),
            ],
            "AUTH_JWT_PUBLIC_KEY_FILE",
        ),
        (&[("AUTH_LEEWAY_MS", "-1")], "AUTH_LEEWAY_MS"),
        (&[("AUTH_TOKEN_MAX_BYTES", "10")], "AUTH_TOKEN_MAX_BYTES"),
    ];
    for (vars, variable) in cases {
        let mut all = vec![("PORT", "0")];
        all.extend_from_slice(vars);
        let (code, stderr) = run_to_exit(&all).await;
        assert_eq!(code, Some(2), "{vars:?}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid {variable}:")),
            "{vars:?}: {stderr}"
        );
        assert!(!stderr.contains("listening on"), "{vars:?}: {stderr}");
        assert!(
            !stderr.contains(short) && !stderr.contains(SECRET),
            "{stderr}"
        );
    }
}

#[actix_web::test]
async fn the_binary_with_a_public_key_file_takes_tokens_of_its_private_key_only() {
    let binary = Binary::start(&[("AUTH_JWT_PUBLIC_KEY_FILE", &key_file("ec-public.pem"))]).await;
    let private = std::fs::read(key_file("ec-private.pem")).expect("the test key");
    let signing = EncodingKey::from_ec_pem(&private).expect("an EC key");
    let good = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims("ann", 600),
        &signing,
    )
    .expect("signs");
    let mut client = Client::open(&binary.ws_url(&format!("/ws?token={good}"))).await;
    assert_eq!(client.expect("welcome").await["user"], "ann");
    let refused = tokio::time::timeout(
        DEADLINE,
        tokio_tungstenite::connect_async(
            binary.ws_url(&format!("/ws?token={}", token(&claims("ann", 600)))),
        ),
    )
    .await
    .expect("an answer in time");
    match refused {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        other => panic!("an HS256 token against an ES256 key must be refused: {other:?}"),
    }
}

#[actix_web::test]
async fn without_auth_a_token_is_ignored_and_refresh_says_auth_is_off() {
    let app = spawn_app().await;
    let mut client = open(&app, "?token=anything&name=ann", None)
        .await
        .expect("no token is checked");
    assert!(client.welcome.get("user").is_none(), "{}", client.welcome);
    assert!(client.welcome.get("expires_at").is_none());
    client
        .send(json!({"type": "refresh", "token": token(&claims("ann", 60)), "ref": "r"}))
        .await;
    let error = client.expect_error("bad_token").await;
    assert_eq!(error["ref"], "r");
    assert!(
        error["message"].as_str().unwrap().contains("off"),
        "{error}"
    );
    client.sync().await;
}

// ----------------------------------------------------------------------- rooms

#[actix_web::test]
async fn join_and_say_outside_the_tokens_rooms_are_forbidden() {
    let app = spawn_with_auth(|_| {}).await;
    let mut granted = claims("ann", 600);
    granted["rooms"] = json!(["lobby", "team-*"]);
    let mut ann = connect_with(&app, &token(&granted), "").await;
    let _bob = member(&app, "bob", "secret").await;

    for room in ["lobby", "team-red"] {
        ann.send(json!({"type": "join", "room": room})).await;
        ann.expect("joined").await;
    }
    ann.send(json!({"type": "join", "room": "secret", "ref": "j"}))
        .await;
    let error = ann.expect_error("forbidden").await;
    assert_eq!(error["ref"], "j");
    assert!(error["message"].as_str().unwrap().contains("secret"));
    ann.send(json!({"type": "say", "room": "secret", "text": "hi", "ref": "s"}))
        .await;
    assert_eq!(ann.expect_error("forbidden").await["ref"], "s");
    ann.send(json!({"type": "say", "room": "team-red", "text": "hi"}))
        .await;
    assert_eq!(ann.expect("message").await["text"], "hi");
}

#[actix_web::test]
async fn a_room_in_the_query_outside_the_tokens_rooms_is_an_error_after_welcome() {
    let app = spawn_with_auth(|_| {}).await;
    let mut granted = claims("ann", 600);
    granted["rooms"] = json!(["lobby"]);
    let granted = token(&granted);

    let mut refused = connect_with(&app, &granted, "&room=secret").await;
    refused.expect_error("forbidden").await;
    refused
        .send(json!({"type": "echo", "text": "still here"}))
        .await;
    assert_eq!(refused.expect("echo").await["text"], "still here");

    let mut allowed = connect_with(&app, &granted, "&room=lobby").await;
    assert_eq!(allowed.expect("joined").await["room"], "lobby");
}

// ----------------------------------------------------------------------- users

#[actix_web::test]
async fn members_carry_their_user_and_first_and_last_follow_it_across_connections() {
    let app = spawn_with_auth(|_| {}).await;
    let mut watcher = connect_with(&app, &token(&claims("watcher", 600)), "&room=lobby").await;
    watcher.expect("joined").await;
    let ann = token(&claims("ann", 600));

    let mut phone = connect_with(&app, &ann, "&room=lobby&name=phone").await;
    let joined = phone.expect("joined").await;
    let members: Vec<&Value> = joined["members"].as_array().unwrap().iter().collect();
    assert!(
        members
            .iter()
            .any(|m| m["user"] == "watcher" && m["id"] == watcher.id.as_str()),
        "{joined}"
    );
    let arrived = watcher.expect("member_joined").await;
    assert_eq!(
        (&arrived["member"]["user"], &arrived["first"]),
        (&json!("ann"), &json!(true))
    );

    let mut laptop = connect_with(&app, &ann, "&room=lobby&name=laptop").await;
    laptop.expect("joined").await;
    let again = watcher.expect("member_joined").await;
    assert_eq!(again["first"], false, "ann is already here: {again}");
    assert_eq!(phone.expect("member_joined").await["first"], false);

    laptop.close().await;
    let gone = watcher.expect("member_left").await;
    assert_eq!(
        (&gone["last"], &gone["member"]["name"]),
        (&json!(false), &json!("laptop"))
    );
    assert_eq!(phone.expect("member_left").await["last"], false);
    phone.send(json!({"type": "leave", "room": "lobby"})).await;
    phone.expect("left").await;
    let last = watcher.expect("member_left").await;
    assert_eq!(last["last"], true, "{last}");
}

// ----------------------------------------------------------------------- refresh

#[actix_web::test]
async fn refresh_with_a_valid_token_answers_refreshed_with_its_expiry() {
    let app = spawn_with_auth(|_| {}).await;
    let mut ann = connect_with(&app, &token(&claims("ann", 60)), "").await;
    let renewed = claims("ann", 3600);
    ann.send(json!({"type": "refresh", "token": token(&renewed), "ref": "r1"}))
        .await;
    let refreshed = ann.expect("refreshed").await;
    assert_eq!(refreshed["ref"], "r1");
    assert_eq!(
        refreshed["expires_at"],
        rfc3339(renewed["exp"].as_u64().unwrap())
    );
    ann.sync().await;
}

#[actix_web::test]
async fn a_refresh_for_another_user_or_with_a_bad_token_is_bad_token_and_the_connection_stays() {
    let app = spawn_with_auth(|_| {}).await;
    let mut ann = connect_with(&app, &token(&claims("ann", 600)), "").await;
    let now = now_seconds() as u64;
    for (bad, says) in [
        (token(&claims("bob", 600)), "another user"),
        ("garbage".to_string(), "not a JWT"),
        (token(&json!({"sub": "ann", "exp": now - 120})), "expired"),
        (
            signed(
                b"another-secret-another-secret-0123",
                Algorithm::HS256,
                &claims("ann", 600),
            ),
            "signature",
        ),
    ] {
        ann.send(json!({"type": "refresh", "token": bad, "ref": says}))
            .await;
        let error = ann.expect_error("bad_token").await;
        assert_eq!(error["ref"], says);
        assert!(
            error["message"].as_str().unwrap().contains(says),
            "{says}: {error}"
        );
    }
    ann.send(json!({"type": "echo", "text": "still here"}))
        .await;
    assert_eq!(ann.expect("echo").await["text"], "still here");
}

#[actix_web::test]
async fn a_refreshed_tokens_name_renames_and_its_rooms_replace_the_old_ones() {
    let app = spawn_with_auth(|_| {}).await;
    let mut bob = member(&app, "bob", "team-red").await;
    let mut carol = member(&app, "carol", "lobby").await;
    let mut first = claims("ann", 600);
    first["name"] = json!("ann");
    first["rooms"] = json!(["lobby", "team-*"]);
    let mut ann = connect_with(&app, &token(&first), "").await;
    for room in ["lobby", "team-red"] {
        ann.send(json!({"type": "join", "room": room})).await;
        ann.expect("joined").await;
    }
    carol.expect("member_joined").await;
    bob.expect("member_joined").await;

    let mut second = claims("ann", 1200);
    second["name"] = json!("Ann B.");
    second["rooms"] = json!(["lobby"]);
    ann.send(json!({"type": "refresh", "token": token(&second), "ref": "r"}))
        .await;
    assert_eq!(ann.expect("refreshed").await["ref"], "r");
    let left = ann.expect("left").await;
    assert_eq!(
        (&left["room"], &left["reason"], &left["ref"]),
        (&json!("team-red"), &json!("kicked"), &json!("r"))
    );
    let renamed = ann.expect("member_renamed").await;
    assert_eq!(
        (&renamed["room"], &renamed["member"]["name"]),
        (&json!("lobby"), &json!("Ann B."))
    );

    let gone = bob.expect("member_left").await;
    assert_eq!(
        (&gone["reason"], &gone["last"]),
        (&json!("kicked"), &json!(true))
    );
    let seen = carol.expect("member_renamed").await;
    assert_eq!(
        (&seen["old_name"], &seen["member"]["user"]),
        (&json!("ann"), &json!("ann"))
    );

    ann.send(json!({"type": "join", "room": "team-blue"})).await;
    ann.expect_error("forbidden").await;
}

// ----------------------------------------------------------------------- expiry

/// Claims for `sub` that expire `seconds` (a fraction allowed) from now.
fn claims_expiring_in(sub: &str, seconds: f64) -> Value {
    json!({"sub": sub, "exp": now_seconds() + seconds})
}

#[actix_web::test]
async fn a_connection_whose_token_expires_unrefreshed_is_closed_with_4001() {
    let app = spawn_with_auth(|config| config.auth_leeway = Duration::from_millis(200)).await;
    let mut watcher = member(&app, "watcher", "lobby").await;
    let minted = Instant::now();
    let mut ann = connect_with(&app, &token(&claims_expiring_in("ann", 3.0)), "&room=lobby").await;
    ann.expect("joined").await;
    watcher.expect("member_joined").await;

    ann.expect_close(4001).await;
    // At `exp` plus the leeway (3.2 s), not at `exp` and not at connect: a little early
    // only for the clocks' rounding, late only by a loaded machine's scheduling.
    let closed_after = minted.elapsed();
    assert!(
        closed_after >= Duration::from_millis(3_100),
        "closed {closed_after:?} after minting: before exp + leeway"
    );
    assert!(
        closed_after < Duration::from_millis(5_200),
        "closed {closed_after:?} after minting: long after exp + leeway"
    );
    let left = watcher.expect("member_left").await;
    assert_eq!(left["reason"], "disconnect", "{left}");
}

#[actix_web::test]
async fn a_refresh_before_expiry_keeps_the_connection_past_the_old_one() {
    let app = spawn_with_auth(|config| config.auth_leeway = Duration::from_millis(200)).await;
    let mut ann = connect_with(&app, &token(&claims_expiring_in("ann", 3.0)), "").await;
    // A witness whose token expires a second after ann's first one did: once it is
    // closed, ann's old deadline has long passed.
    let mut witness = connect_with(&app, &token(&claims_expiring_in("witness", 4.0)), "").await;

    ann.send(json!({"type": "refresh", "token": token(&claims("ann", 600))}))
        .await;
    ann.expect("refreshed").await;
    witness.expect_close(4001).await;

    ann.send(json!({"type": "echo", "text": "still open"}))
        .await;
    assert_eq!(ann.expect("echo").await["text"], "still open");
}

// ----------------------------------------------------------------------- the log

#[actix_web::test]
async fn no_token_appears_in_the_log_whether_good_bad_or_refreshed() {
    let log = Capture::start();
    let app = spawn_with_auth(|_| {}).await;
    let good = token(&claims("log-test-user", 600));
    let expired = token(&json!({"sub": "log-test-user", "exp": now_seconds() as u64 - 600}));
    let foreign = signed(
        b"another-secret-another-secret-0123",
        Algorithm::HS256,
        &claims("log-test-user", 600),
    );
    let refreshed = token(&claims("log-test-user", 1200));
    let tokens = [&good, &expired, &foreign, &refreshed];

    let mut client = connect_with(&app, &good, "&name=logged").await;
    expect_unauthorized(&app, &format!("?token={expired}"), None, "expired").await;
    expect_unauthorized(&app, "", Some(&format!("Bearer {foreign}")), "signature").await;
    client
        .send(json!({"type": "refresh", "token": refreshed}))
        .await;
    client.expect("refreshed").await;
    client
        .send(json!({"type": "refresh", "token": foreign}))
        .await;
    client.expect_error("bad_token").await;
    client.close().await;

    // Something was logged about each, so the test could see a token if one were there.
    log.wait_for("user log-test-user) connected").await;
    log.wait_for("unauthorized: the token has expired").await;
    log.wait_for("unauthorized: the token's signature").await;
    log.wait_for("token refreshed").await;
    log.wait_for("refresh refused").await;
    // The test's own client libraries log their requests (tokens and all) at trace
    // level; they are not the server.
    let client_side = ["tungstenite", "tokio_tungstenite", "reqwest", "hyper"];
    let lines: Vec<String> = log
        .lines()
        .into_iter()
        .filter(|line| {
            // `LEVEL target: message`; the target's first part is the crate.
            let target = line.split(' ').nth(1).unwrap_or_default();
            let krate = target.trim_end_matches(':').split("::").next();
            !client_side.iter().any(|client| krate == Some(client))
        })
        .collect();
    assert!(
        lines.iter().any(|line| line.contains("actix")),
        "the server's libraries were heard too (at trace level)"
    );
    for token in tokens {
        for part in token.split('.') {
            assert!(
                !lines.iter().any(|line| line.contains(part)),
                "a part of a token is in the log: {:#?}",
                lines
                    .iter()
                    .filter(|line| line.contains(part))
                    .collect::<Vec<_>>()
            );
        }
    }
    // Nor the secret, in the config's debug form or anywhere.
    assert!(!format!("{:?}", app.config).contains(SECRET));
    assert!(!log.contains(SECRET));
}
