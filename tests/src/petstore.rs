//! `examples/petstore-backend.py`, the shipped example's REST API, run by a test on a free port
//! and stopped when dropped.

use std::io::BufRead;
use std::path::PathBuf;

pub struct Petstore {
    child: std::process::Child,
    pub port: u16,
}

impl Petstore {
    /// Starts it and waits for the line saying it listens.
    pub fn start() -> Petstore {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port();
        let mut child = std::process::Command::new("python3")
            .arg(root.join("examples/petstore-backend.py"))
            .arg(port.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs the example backend");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().expect("its stdout")).read_line(&mut first).expect("its first line");
        assert!(first.starts_with("petstore listening"), "{first}");
        Petstore { child, port }
    }
}

impl Drop for Petstore {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
