//! The cluster tests' own Redis: it starts on a free port, answers, keeps an AOF's data
//! across a restart (and nothing without one), stops answering while paused, and is
//! gone once dropped. These need no hubbub node.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{ping, redis_or_skip, Cluster, Persistence, RedisServer, NODE_TIMEOUT};
use crate::helpers::DEADLINE;

fn text(value: redis::Value) -> Option<String> {
    redis::from_redis_value(value).ok()
}

#[actix_web::test]
async fn a_test_redis_starts_on_a_free_port_answers_and_is_gone_once_dropped() {
    let Some(binary) = redis_or_skip("a_test_redis_starts_on_a_free_port") else {
        return;
    };
    let one = RedisServer::start(&binary, Persistence::None).await;
    let two = RedisServer::start(&binary, Persistence::None).await;
    assert_ne!(one.port, two.port);
    assert_eq!(text(one.cli(&["PING"]).await).as_deref(), Some("PONG"));
    one.cli(&["SET", "k", "one"]).await;
    two.cli(&["SET", "k", "two"]).await;
    assert_eq!(text(one.cli(&["GET", "k"]).await).as_deref(), Some("one"));
    assert_eq!(one.url(), format!("redis://127.0.0.1:{}/0", one.port));
    // What the tests rely on: no RDB snapshots (`--save ''`), loopback only.
    let save = one.cli(&["CONFIG", "GET", "save"]).await;
    let save: Vec<String> = redis::from_redis_value(save).unwrap();
    assert_eq!(save, ["save", ""]);
    assert!(one.try_cli(&["NOT-A-COMMAND"]).await.is_err());

    let port = one.port;
    drop(one);
    assert!(!ping(port).await, "a dropped Redis is killed");
    assert!(ping(two.port).await, "the other one lives on");
}

#[actix_web::test]
async fn a_test_redis_with_an_aof_keeps_its_data_across_a_restart_on_the_same_port() {
    let Some(binary) = redis_or_skip("a_test_redis_with_an_aof_keeps_its_data") else {
        return;
    };
    let mut redis = RedisServer::start(&binary, Persistence::Aof).await;
    let port = redis.port;
    redis.cli(&["SET", "kept", "yes"]).await;
    redis.cli(&["RPUSH", "list", "a", "b"]).await;
    redis.stop().await;
    assert!(!ping(port).await, "stopped");
    assert!(redis.try_cli(&["PING"]).await.is_err());
    redis.restart().await;
    assert_eq!(redis.port, port);
    assert_eq!(
        text(redis.cli(&["GET", "kept"]).await).as_deref(),
        Some("yes")
    );
    let list: Vec<String> =
        redis::from_redis_value(redis.cli(&["LRANGE", "list", "0", "-1"]).await).unwrap();
    assert_eq!(list, ["a", "b"]);
}

#[actix_web::test]
async fn a_test_redis_without_persistence_comes_back_empty() {
    let Some(binary) = redis_or_skip("a_test_redis_without_persistence_comes_back_empty") else {
        return;
    };
    let mut redis = RedisServer::start(&binary, Persistence::None).await;
    redis.cli(&["SET", "lost", "yes"]).await;
    redis.restart().await;
    assert_eq!(redis.cli(&["GET", "lost"]).await, redis::Value::Nil);
    assert_eq!(redis.cli(&["DBSIZE"]).await, redis::Value::Int(0));
}

#[actix_web::test]
async fn a_paused_test_redis_answers_nothing_until_resumed() {
    let Some(binary) = redis_or_skip("a_paused_test_redis_answers_nothing_until_resumed") else {
        return;
    };
    let redis = RedisServer::start(&binary, Persistence::None).await;
    let mut connection = TcpStream::connect(("127.0.0.1", redis.port)).await.unwrap();
    redis.pause();
    connection.write_all(b"PING\r\n").await.unwrap();
    let mut answer = [0u8; 7];
    let early = tokio::time::timeout(
        Duration::from_millis(300),
        connection.read_exact(&mut answer),
    )
    .await;
    assert!(early.is_err(), "a paused Redis must not answer");
    redis.resume();
    tokio::time::timeout(DEADLINE, connection.read_exact(&mut answer))
        .await
        .expect("the answer once resumed")
        .unwrap();
    assert_eq!(&answer, b"+PONG\r\n");
    // Paused again and dropped: still killed.
    redis.pause();
    let port = redis.port;
    drop(redis);
    assert!(!ping(port).await);
}

#[actix_web::test]
async fn a_clusters_nodes_share_its_redis_and_prefix_with_a_short_node_timeout() {
    let Some(cluster) = Cluster::start("a_clusters_nodes_share_its_redis").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node_with(|config| config.history_len = 7).await;
    for node in [&a, &b] {
        assert_eq!(node.config.redis_url, Some(cluster.redis.url()));
        assert_eq!(node.config.redis_prefix, cluster.prefix);
        assert!(cluster.prefix.starts_with("test-"), "{}", cluster.prefix);
        assert_eq!(node.config.node_timeout, NODE_TIMEOUT);
        assert_eq!(node.get_raw("/healthz").await.status, 200);
    }
    assert_eq!((a.config.history_len, b.config.history_len), (50, 7));
    assert_ne!(a.config.node_id, b.config.node_id, "every node its own id");
}
