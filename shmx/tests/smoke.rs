use shmx::{Publisher, Subscriber};
use std::time::Duration;

fn root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::env::set_var("SHMX_ROOT", d.path());
    d
}

#[test]
fn smoke() {
    let dir = root();
    let s = Subscriber::<u64>::new("a/b").unwrap();
    let p = Publisher::<u64>::new("a/b").unwrap();
    assert_eq!(p.subscriber_count(), 1);
    for i in 0..1000u64 {
        p.send(i).unwrap();
        let x = s.recv_timeout(Duration::from_secs(1)).unwrap().unwrap();
        assert_eq!(*x, i);
        assert_eq!(x.sequence(), i + 1);
    }
    let st = p.pool_stats();
    assert_eq!(st.free, st.total, "{st:?}");
    drop(s);
    drop(p);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
