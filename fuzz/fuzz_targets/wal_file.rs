//! WAL files as replay reads them from the object store: any bytes
//! decode or give an error, and a file that decodes encodes back to the
//! same bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = wal::decode("fuzz", 1, Bytes::copy_from_slice(data)) else {
        return;
    };
    assert_eq!(&wal::encode(&file.entries)[..], data);
});
