//! The audit trail's costs: bulk insert with the trail on vs off, full verification
//! throughput, and an inclusion proof in a log of 1M transactions.

use chrono_audit::merkle::{self, Frontier, MemoryNodes};
use chrono_server::{ChronoDb, Config};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn open(audit: bool) -> (ChronoDb, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = Config::with_data_dir(dir.path());
    config.features.audit.enabled = audit;
    let db = ChronoDb::open_with_config(config).expect("open");
    db.execute(
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id BIGINT, total DOUBLE, status TEXT)",
    )
    .expect("create");
    (db, dir)
}

fn insert_batch(db: &ChronoDb, next: &mut i64) {
    let values: Vec<String> = (0..1000)
        .map(|i| {
            let id = *next + i;
            format!("({id}, {}, {}.5, 'shipped')", id % 997, id % 300)
        })
        .collect();
    *next += 1000;
    db.execute(&format!("INSERT INTO orders VALUES {}", values.join(", ")))
        .expect("insert");
}

fn bulk_insert(c: &mut Criterion) {
    let mut g = c.benchmark_group("bulk_insert_1000_rows");
    g.throughput(Throughput::Elements(1000));
    g.sample_size(30);
    for audit in [false, true] {
        let (db, _dir) = open(audit);
        let mut next = 0i64;
        let name = if audit { "audit_on" } else { "audit_off" };
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| insert_batch(&db, &mut next))
        });
    }
    g.finish();
}

fn verification(c: &mut Criterion) {
    let (db, _dir) = open(true);
    let mut next = 0i64;
    for _ in 0..50 {
        insert_batch(&db, &mut next);
    }
    let trail = db.audit_trail().expect("audit on");
    let entries = trail.verify().expect("verify").entries;
    let mut g = c.benchmark_group("audit_verify");
    g.throughput(Throughput::Elements(entries));
    g.sample_size(10);
    g.bench_function(
        BenchmarkId::from_parameter(format!("{entries}_entries")),
        |b| b.iter(|| assert!(trail.verify().expect("verify").is_ok())),
    );
    g.finish();
}

fn inclusion_proof(c: &mut Criterion) {
    const SIZE: u64 = 1_000_000;
    let mut frontier = Frontier::default();
    let mut nodes = MemoryNodes::default();
    let mut leaves = Vec::with_capacity(SIZE as usize);
    for i in 0..SIZE {
        let leaf = merkle::leaf_hash(&i.to_be_bytes());
        leaves.push(leaf);
        nodes.insert(&frontier.append(leaf));
    }
    let root = frontier.root();
    let index = 765_432;
    let proof = merkle::inclusion_proof(&nodes, index, SIZE).expect("proof");
    println!(
        "inclusion proof in a log of {SIZE} transactions: {} hashes",
        proof.len()
    );
    assert!(proof.len() <= 20);
    let mut g = c.benchmark_group("inclusion_proof_1M");
    g.bench_function("verify", |b| {
        b.iter(|| {
            assert!(merkle::verify_inclusion(
                index,
                SIZE,
                black_box(&leaves[index as usize]),
                &proof,
                &root
            ))
        })
    });
    g.bench_function("prove", |b| {
        b.iter(|| black_box(merkle::inclusion_proof(&nodes, index, SIZE).expect("proof")))
    });
    g.finish();
}

criterion_group!(benches, bulk_insert, verification, inclusion_proof);
criterion_main!(benches);
