// node-postgres (the `pg` package) against `chronodb serve --pg`: untyped parameters,
// the types it parses, named prepared statements, a transaction with a savepoint, an
// error's SQLSTATE, array rows, a cancelled query. Exits non-zero on the first failed check.
'use strict';
const assert = require('assert');
const { Client, Query } = require('pg');

const port = Number(process.argv[2]);

(async () => {
  const c = new Client({ host: '127.0.0.1', port, user: 'app', database: 'chronodb' });
  await c.connect();
  await c.query(
    'CREATE TABLE nodet (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score DOUBLE PRECISION, at TIMESTAMP, ok BOOLEAN, raw BYTEA)');
  const at = new Date('2024-01-02T03:04:05.250Z');
  await c.query('INSERT INTO nodet VALUES ($1, $2, $3, $4, $5, $6)',
    [1, "Ada 'quoted' é", 1.5, at, true, Buffer.from([0, 1, 255])]);
  for (let i = 2; i <= 20; i++) {
    await c.query('INSERT INTO nodet (id, name, score) VALUES ($1, $2, $3)', [i, `n${i}`, i / 4]);
  }

  const one = await c.query('SELECT * FROM nodet WHERE id = $1', [1]);
  assert.deepStrictEqual(one.fields.map((f) => f.dataTypeID), [20, 25, 701, 1184, 16, 17]);
  const row = one.rows[0];
  assert.strictEqual(row.id, '1'); // int8 comes back as a string, as from PostgreSQL
  assert.strictEqual(row.name, "Ada 'quoted' é");
  assert.strictEqual(row.score, 1.5);
  assert.strictEqual(row.at.getTime(), at.getTime());
  assert.strictEqual(row.ok, true);
  assert.deepStrictEqual([...row.raw], [0, 1, 255]);

  // A named statement is parsed once and run again.
  for (let i = 0; i < 3; i++) {
    const r = await c.query({ name: 'by-id', text: 'SELECT name FROM nodet WHERE id = $1', values: [3] });
    assert.deepStrictEqual(r.rows, [{ name: 'n3' }]);
  }
  const sum = await c.query('SELECT count(*) AS n, sum(score) AS s FROM nodet WHERE score > $1', [2]);
  assert.deepStrictEqual(sum.rows, [{ n: '12', s: 43.5 }]);

  // A transaction: a savepoint undone, an error inside, ROLLBACK TO saves the rest.
  await c.query('BEGIN');
  await c.query("UPDATE nodet SET name = 'changed' WHERE id = 2");
  await c.query('SAVEPOINT s');
  await c.query('DELETE FROM nodet');
  await c.query('ROLLBACK TO SAVEPOINT s');
  await assert.rejects(c.query('INSERT INTO nodet (id, name) VALUES (1, $1)', ['dup']),
    (e) => e.code === '23505');
  await assert.rejects(c.query('SELECT 1'), (e) => e.code === '25P02');
  await c.query('ROLLBACK TO SAVEPOINT s');
  await c.query('COMMIT');
  const after = await c.query('SELECT count(*) AS n FROM nodet');
  assert.deepStrictEqual(after.rows, [{ n: '20' }]);
  const changed = await c.query({ text: 'SELECT id, name FROM nodet WHERE id = 2', rowMode: 'array' });
  assert.deepStrictEqual(changed.rows, [['2', 'changed']]);

  await assert.rejects(c.query('SELECT * FROM missing'), (e) => e.code === '42P01');
  await assert.rejects(c.query('SELEC 1'), (e) => e.code === '42601');

  // Catalog reads drivers and tools send.
  const tables = await c.query(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'");
  assert.deepStrictEqual(tables.rows, [{ table_name: 'nodet' }]);

  // A cancelled statement: the server stops it with 57014, the connection goes on.
  // (The test server's statement timeout is minutes: only the cancel stops it.)
  const slow = new Query(
    'SELECT count(*) FROM nodet a, nodet b, nodet c, nodet d, nodet e, nodet f, nodet g');
  const ended = new Promise((resolve) => {
    slow.on('error', resolve);
    slow.on('end', () => resolve(null));
  });
  c.query(slow);
  setTimeout(() => {
    const canceller = new Client({ host: '127.0.0.1', port, user: 'app', database: 'chronodb' });
    canceller.cancel(c, slow);
  }, 1000);
  const stopped = await ended;
  assert.ok(stopped && stopped.code === '57014', `cancelled: ${stopped}`);
  // ChronoDB's integers are int8, which node-postgres gives as strings.
  assert.deepStrictEqual((await c.query('SELECT 1 AS x')).rows, [{ x: '1' }]);

  await c.end();
  console.log('all checks passed');
})().catch((e) => {
  console.error('FAILED', e);
  process.exit(1);
});
