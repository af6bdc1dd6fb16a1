//! The descriptors a server holds before its first client, as the bench counts them
//! to decide whether select can watch a workload's clients (FD_SETSIZE), against the
//! kernel's list of the process's open descriptors.

mod common;

use common::{Server, THREADS, combinations_with_models, model_args, strs};
use iobench::server::descriptors_before_clients;
use iobench::sys::inherited_descriptors;

#[test]
fn the_bench_counts_the_descriptors_each_model_opens() {
    let inherited = inherited_descriptors().unwrap();
    for (backend, model) in combinations_with_models() {
        let server = Server::start(&strs(&model_args(backend, model)));
        let fds: Vec<usize> = std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
            .expect("list the server's descriptors")
            .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
            .collect();
        // Besides its own, the server holds what it inherited from this test
        // (the test harness's descriptors without close-on-exec).
        assert_eq!(
            fds.len(),
            3 + inherited + descriptors_before_clients(backend, model, THREADS),
            "{backend} {model}: descriptors {fds:?}, {inherited} inherited"
        );
        server.stop();
    }
}
