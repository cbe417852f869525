// The generator and the server allocate and free per call on one thread and
// free records on the store's writer thread; glibc's malloc serialises those
// cross-thread frees on an arena lock and spends a fifth of a call in malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kmsim::cli::main()
}
