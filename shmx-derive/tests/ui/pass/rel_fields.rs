// Relative pointers of every kind, written through the derived writer, travel with their
// sample: a `RelSlice<f32>`, a `RelStr`, a nested plain struct and a nested struct with a
// `RelStr` of its own (written with `Writable::writer` and the outer writer's tail) are
// published and read back in process. Swapping two writers' pinned references (allowed: it
// moves no pointer) leaves each pointing into the other sample, and setting one through the
// wrong tail is refused at run time.
use shmx::{Error, Publisher, RelSlice, RelStr, ShmMessage, Subscriber, Writable};

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Vec2 {
    pub x: f32,
    pub y: f32,
}

#[derive(ShmMessage)]
#[repr(C)]
pub struct Sensor {
    pub id: u32,
    pub name: RelStr,
}

#[derive(ShmMessage)]
#[repr(C)]
pub struct Scan {
    pub seq: u64,
    pub origin: Vec2,
    pub ranges: RelSlice<f32>,
    pub frame: RelStr,
    pub sensor: Sensor,
    pub _pad: [u8; 4],
}

fn main() -> Result<(), Error> {
    const _: () = assert!(!<Scan as ShmMessage>::ALWAYS_VALID);
    const _: () = assert!(<Scan as ShmMessage>::ZEROABLE);
    assert_eq!(
        Scan::SCHEMA.describe(),
        "Scan(48,8){seq@0:u64,origin@8:Vec2(8,4){x@0:f32,y@4:f32},ranges@16:rel[f32],\
         frame@24:relstr,sensor@32:Sensor(12,4){id@0:u32,name@4:relstr},_pad@44:[u8;4]}"
    );

    // trybuild runs pass cases with the dev-dependencies of shmx-derive, which do not include
    // `tempfile`: a directory of our own, removed at the end.
    let root = std::env::temp_dir().join(format!("shmx-ui-rel-fields-{}", std::process::id()));
    let subscriber = Subscriber::<Scan>::builder("ui/scan")
        .root(&root)
        .create()?;
    let publisher = Publisher::<Scan>::builder("ui/scan")
        .root(&root)
        .max_tail_bytes(4096)
        .create()?;

    let mut sample = publisher.loan()?;
    {
        let mut w = sample.writer();
        *w.seq = 7;
        *w.origin = Vec2 { x: 1.0, y: -2.0 };
        w.set_frame("lidar_front")?;
        let ranges = w.alloc_ranges(360)?;
        for (i, r) in ranges.iter_mut().enumerate() {
            *r = i as f32 * 0.5;
        }
        // `Sensor::writer(w.sensor.as_mut(), w.tail())`, as the generated `tail()` documents
        // it, is refused (E0502: `w.sensor` is borrowed mutably while `w.tail()` borrows all
        // of `w`); the tail is `Copy` and not tied to that borrow, so take it first.
        let tail = w.tail();
        let mut sensor = Sensor::writer(w.sensor.as_mut(), tail);
        *sensor.id = 3;
        sensor.set_name("ouster-os1")?;
    }
    // The loaned sample reads back through `&Scan`.
    assert_eq!(sample.frame(), "lidar_front");
    assert_eq!(sample.sensor.name(), "ouster-os1");
    assert_eq!(
        sample.tail_used(),
        "lidar_front".len() + 1 + 360 * 4 + "ouster-os1".len()
    );
    sample.publish()?;

    let received = subscriber.take()?.expect("published above");
    assert_eq!(received.seq, 7);
    assert_eq!(received.origin, Vec2 { x: 1.0, y: -2.0 });
    assert_eq!(received.frame(), "lidar_front");
    assert_eq!(&*received.frame, "lidar_front");
    assert_eq!(received.ranges().len(), 360);
    assert_eq!(received.ranges()[359], 179.5);
    assert_eq!(received.sensor.id, 3);
    assert_eq!(received.sensor.name(), "ouster-os1");
    drop(received);

    let mut a = publisher.loan()?;
    let mut b = publisher.loan()?;
    {
        let mut wa = a.writer();
        let mut wb = b.writer();
        std::mem::swap(&mut wa.frame, &mut wb.frame);
        assert!(matches!(wa.set_frame("a"), Err(Error::ForeignTail { .. })));
        assert!(matches!(wb.set_frame("b"), Err(Error::ForeignTail { .. })));
        wa.set_ranges(&[1.0, 2.0])?;
    }
    assert_eq!((a.frame(), b.frame()), ("", ""));
    assert_eq!(a.ranges(), &[1.0, 2.0]);
    drop((a, b));

    drop((subscriber, publisher));
    std::fs::remove_dir_all(&root).ok();
    Ok(())
}
