//! `hubbub token`, run as the built binary: it prints a token alone on stdout that the
//! server takes (its user, name and rooms as asked), and says why it cannot when only a
//! public key, or no key, is configured.

use std::process::{Command, Output};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::{json, Value};

use crate::auth::{connect_with, spawn_with_auth, SECRET};

/// Runs `hubbub token <args>` with `env` as its only `AUTH_*` settings, in an empty
/// directory (so no `.env` is read).
fn hubbub_token(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = std::env::temp_dir().join(format!("hubbub-token-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let mut command = Command::new(env!("CARGO_BIN_EXE_hubbub"));
    command.arg("token").args(args).current_dir(&dir);
    for variable in hubbub::config::VARIABLES {
        command.env_remove(variable);
    }
    command.envs(env.iter().copied());
    command.output().expect("run the hubbub binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The claims of a token, unverified (the server verifies it below).
fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

#[actix_web::test]
async fn the_readme_invocation_prints_a_token_alone_that_the_server_takes() {
    let output = hubbub_token(
        &[
            "--sub",
            "ann",
            "--name",
            "Ann",
            "--rooms",
            "lobby,team-*",
            "--ttl",
            "1h",
        ],
        &[("AUTH_JWT_SECRET", SECRET)],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stderr), "", "nothing but the token");
    let stdout = text(&output.stdout);
    let token = stdout.strip_suffix('\n').expect("one line");
    assert!(!token.contains(char::is_whitespace), "{stdout:?}");
    let claims = payload(token);
    assert_eq!(
        (&claims["sub"], &claims["name"], &claims["rooms"]),
        (&json!("ann"), &json!("Ann"), &json!(["lobby", "team-*"]))
    );
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );

    let app = spawn_with_auth(|_| {}).await;
    let mut ann = connect_with(&app, token, "&name=ignored").await;
    assert_eq!(ann.welcome["user"], "ann");
    assert_eq!(ann.name, "Ann");
    ann.send(json!({"type": "join", "room": "team-red"})).await;
    ann.expect("joined").await;
    ann.send(json!({"type": "join", "room": "elsewhere"})).await;
    ann.expect_error("forbidden").await;
}

#[actix_web::test]
async fn with_only_a_public_key_or_no_key_it_cannot_sign_and_fails() {
    let public = format!("{}/tests/keys/rsa-public.pem", env!("CARGO_MANIFEST_DIR"));
    for (env, says) in [
        (
            vec![("AUTH_JWT_PUBLIC_KEY_FILE", public.as_str())],
            "cannot sign",
        ),
        (vec![], "no key is configured"),
    ] {
        let output = hubbub_token(&["--sub", "ann"], &env);
        assert_eq!(output.status.code(), Some(1), "{env:?}");
        assert_eq!(text(&output.stdout), "", "{env:?}: no token");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(says), "{env:?}: {stderr}");
    }
}

#[actix_web::test]
async fn bad_arguments_or_settings_are_refused_with_the_usage() {
    let secret = [("AUTH_JWT_SECRET", SECRET)];
    for (args, says) in [
        (&["--name", "Ann"][..], "--sub is required"),
        (&["--sub", "ann", "--ttl", "1 week"][..], "--ttl"),
        (&["--sub", "ann", "--rooms", "a b"][..], "--rooms"),
    ] {
        let output = hubbub_token(args, &secret);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(says) && stderr.contains("usage:"),
            "{args:?}: {stderr}"
        );
        assert_eq!(text(&output.stdout), "");
    }
    let short = hubbub_token(&["--sub", "ann"], &[("AUTH_JWT_SECRET", "short")]);
    assert_eq!(short.status.code(), Some(2));
    assert!(text(&short.stderr).contains("AUTH_JWT_SECRET"));
    let help = hubbub_token(&["--help"], &[]);
    assert!(help.status.success());
    assert!(text(&help.stdout).starts_with("usage: hubbub token"));
}
