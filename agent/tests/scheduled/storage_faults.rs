//! Storage going away during a scheduled job: the upload fails, the attempt is reported
//! failed and queued for a later retry, no object appears under a final name, what the
//! destination already held stays, and the retry succeeds once storage is back.
//! Meanwhile heartbeats report the bytes stored.

use crate::common;
use crate::scene::{self, Storage};
use dbcrate_control::backups::scheduler;
use dbcrate_testkit::S3Server;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_stopped_mid_upload_stores_nothing_and_the_later_retry_succeeds() {
    let mut s3 = S3Server::start().unwrap();
    let scene = scene::scene_with(17, scene::quick_settings(), Storage::S3(&s3)).await;
    let (basis, enrolled) = (&scene.basis, &scene.enrolled);
    let db = &basis.db;
    // Enough data for several S3 parts; the first pg_dump stalls after 24 MB, so the
    // upload is open (parts stored) when Garage is killed. Later runs are plain.
    common::noise_table(&basis.server, "shop", 16);
    let once = basis.dir.path().join("stalled-once");
    let stalling = common::wrapped_pg_dump(
        basis.dir.path(),
        &basis.server,
        &format!(
            "if [ -e {once:?} ]; then exec \"$REAL\" \"$@\"; fi\ntouch {once:?}\n\
             \"$REAL\" \"$@\" | {{ head -c 24000000; sleep 30; cat; }}",
            once = once.display().to_string()
        ),
    );
    let before = common::curl_list(&s3);
    assert_eq!(before, ["acme/README-dbcrate.txt"]);

    // No scheduler loop: the job comes from "run now", so no other job races the checks.
    let now = dbcrate_core::time::unix_now();
    let job = scheduler::run_now(db, &basis.org.id, &enrolled.schedule_id, "user:owner", now)
        .await
        .unwrap();
    let mut agent = scene::run_agent(&basis.server, &enrolled.data, Some(&stalling));
    let data = s3.dir().join("data");
    scene::wait_for(
        "a part to reach Garage",
        Duration::from_secs(60),
        || async { (common::bytes_under(&data) > 4_000_000).then_some(()) },
    )
    .await;
    // Heartbeats carry the bytes stored so far and the phase.
    let (bytes, phase) = scene::wait_for(
        "a heartbeat with bytes",
        Duration::from_secs(30),
        || async {
            let (bytes, phase): (i64, Option<String>) =
                sqlx::query_as("SELECT progress_bytes, phase FROM jobs WHERE id = $1")
                    .bind(&job)
                    .fetch_one(db.pool())
                    .await
                    .unwrap();
            (bytes >= 4_000_000).then_some((bytes, phase))
        },
    )
    .await;
    assert!(bytes <= 25_000_000, "more bytes than pg_dump gave: {bytes}");
    assert_eq!(phase.as_deref(), Some("backing up"));
    s3.kill();

    // The attempt fails with the storage's error and is queued for a later retry; the
    // agent keeps running and is not handed the job again before its retry time.
    let error = scene::wait_for("the attempt to fail", Duration::from_secs(120), || async {
        match scene::job_state(db, &job).await {
            (state, 1, Some(error)) if state == "queued" => Some(error),
            (state, _, error) if state != "running" => {
                panic!("{state} with storage gone: {error:?}")
            }
            _ => None,
        }
    })
    .await;
    assert!(
        error.contains("S3") || error.contains("storage") || error.contains("upload"),
        "the job's error does not say storage failed: {error}"
    );
    assert_eq!(
        scene::audited(db, "job.failed", &job).await,
        1,
        "the failed attempt is audited"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (state, attempt, _) = scene::job_state(db, &job).await;
    assert_eq!(
        (state.as_str(), attempt),
        ("queued", 1),
        "retried before its time"
    );
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM backups")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(recorded, 0, "a failed job recorded a backup");
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent stopped because storage did"
    );

    // Storage back: nothing appeared under a final name and the README is still there.
    // Once the retry time comes (made to pass here), attempt 2 stores the backup.
    s3.restart().unwrap();
    assert_eq!(
        common::curl_list(&s3),
        before,
        "the failed job left objects"
    );
    sqlx::query("UPDATE jobs SET retry_at = $1 WHERE id = $2")
        .bind(dbcrate_core::time::unix_now() - 1)
        .bind(&job)
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(
        scene::wait_for_success(db, &job, Duration::from_secs(120)).await,
        2
    );
    let key: String = sqlx::query_scalar("SELECT object_key FROM backups WHERE job_id = $1")
        .bind(&job)
        .fetch_one(db.pool())
        .await
        .unwrap();
    // The backup and the globals saved next to it, nothing else.
    let mut expected = before.clone();
    expected.push(format!("acme/{key}"));
    expected.push(format!(
        "acme/{}",
        dbcrate_core::object_key::globals_key(&key).unwrap()
    ));
    expected.sort();
    let mut listed = common::curl_list(&s3);
    listed.sort();
    assert_eq!(listed, expected);
    scene::stop(agent).await;
}
