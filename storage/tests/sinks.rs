//! Writing through a [`Sink`] when storage fails at the end, and when two writes aim at
//! one key (a retried job claimed in the same second gets the same key): what is left
//! behind must never stop the next attempt.

use bytes::Bytes;
use dbcrate_core::secret::SecretString;
use dbcrate_storage::{Location, Sink, StorageOptions};
use dbcrate_testkit::{names_in, SftpServer, TempDir, Tmpfs};

const KEY: &str = "app/2026/12/05/app-20261205T094732Z-job_1.pgdump.zst.age";

#[tokio::test]
async fn a_directory_filling_up_before_commit_leaves_no_temp_file() {
    let dir = TempDir::new("sink-full").unwrap();
    let target = dir.path().join("dest");
    std::fs::create_dir(&target).unwrap();
    let _mount = Tmpfs::mount(&target, "64k");
    let location = Location::File {
        path: target.clone(),
    };
    let options = StorageOptions::default();
    let chunk = Bytes::from(vec![7u8; 1024 * 1024]);

    let mut sink = Sink::open(&location, KEY, &options).await.unwrap();
    // The write may be taken into a buffer and fail only when flushed at commit.
    let outcome = match sink.write(chunk.clone()).await {
        Ok(()) => sink.commit(chunk.len() as u64).await.map(|_| ()),
        Err(e) => {
            sink.abort().await;
            Err(e)
        }
    };
    let error = outcome.unwrap_err().to_string();
    assert!(error.contains("No space left on device"), "{error}");
    assert_eq!(
        names_in(&target.join("app/2026/12/05")),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn two_writes_to_one_key_in_a_directory_do_not_collide() {
    let dir = TempDir::new("sink-twice").unwrap();
    let location = Location::File {
        path: dir.path().to_path_buf(),
    };
    let options = StorageOptions::default();
    let first = Sink::open(&location, KEY, &options).await.unwrap();
    // The first attempt's temp file is still there (it was killed, or is still going).
    let mut second = Sink::open(&location, KEY, &options).await.unwrap();
    second.write(Bytes::from_static(b"backup")).await.unwrap();
    let url = second.commit(6).await.unwrap();
    assert!(url.ends_with(KEY), "{url}");
    assert_eq!(std::fs::read(dir.path().join(KEY)).unwrap(), b"backup");
    // The first can no longer publish over it, and removes its temp file.
    let error = first.commit(0).await.unwrap_err().to_string();
    assert!(error.contains("cannot publish"), "{error}");
    let names = names_in(&dir.path().join("app/2026/12/05"));
    assert_eq!(names, [KEY.rsplit('/').next().unwrap()]);
}

#[tokio::test]
async fn two_writes_to_one_key_over_sftp_do_not_collide() {
    let sftp = SftpServer::start().unwrap();
    let options = StorageOptions {
        ssh_private_key: Some(SecretString::new(
            std::fs::read_to_string(sftp.client_key()).unwrap(),
        )),
        ssh_host_key: Some(sftp.known_hosts_line().to_string()),
        ..StorageOptions::default()
    };
    let location = Location::parse(&sftp.url(), "test").unwrap();
    let first = Sink::open(&location, KEY, &options).await.unwrap();
    // An aborted attempt leaves an empty hidden file (the agent deletes nothing).
    first.abort().await;
    let mut second = Sink::open(&location, KEY, &options).await.unwrap();
    second.write(Bytes::from_static(b"backup")).await.unwrap();
    second.commit(6).await.unwrap();
    assert_eq!(std::fs::read(sftp.root().join(KEY)).unwrap(), b"backup");
}
