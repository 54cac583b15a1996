"""psycopg 3 against `chronodb serve --pg`: typed parameters both ways, binary results,
transactions, a cancelled statement, server-side cursors, COPY in and out, time travel
at the commit time the server reports. Exits non-zero on the first failed check."""
import datetime
import sys
import threading
import time

import psycopg

port = int(sys.argv[1])
conn = psycopg.connect(host="127.0.0.1", port=port, user="app", dbname="chronodb", autocommit=True)
cur = conn.cursor()
cur.execute(
    "CREATE TABLE people (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score DOUBLE PRECISION,"
    " active BOOLEAN, born TIMESTAMP, photo BYTEA)"
)
born = datetime.datetime(2024, 5, 1, 12, 30, 0, 250000, tzinfo=datetime.timezone.utc)
first = (1, "Ada \u00e9 'quoted'", 9.5, True, born, b"\x00\x01\xff")
cur.execute("INSERT INTO people VALUES (%s, %s, %s, %s, %s, %s)", first)
cur.executemany(
    "INSERT INTO people VALUES (%s, %s, %s, %s, %s, %s)",
    [(i, f"p{i}", i / 2, i % 2 == 0, born, None) for i in range(2, 50)],
)
cur.execute("SELECT id, name, score, active, born, photo FROM people WHERE id = %s", (1,))
assert cur.fetchone() == first
bcur = conn.cursor(binary=True)
bcur.execute("SELECT id, name, score, active, born, photo FROM people WHERE id = %s", (1,))
assert bcur.fetchone() == first, "binary results"
cur.execute("SELECT count(*) FROM people WHERE name LIKE %s AND photo IS NULL", ("p%",))
assert cur.fetchone() == (48,)

# Transactions: one commits, one rolls back; the commit's time is reported.
with conn.transaction():
    cur.execute("UPDATE people SET score = score + 1 WHERE id = 1")
committed = conn.info.parameter_status("chronodb.last_commit")
assert committed, "chronodb.last_commit after a commit"
try:
    with conn.transaction():
        cur.execute("UPDATE people SET score = 0 WHERE id = 1")
        raise RuntimeError("roll back")
except RuntimeError:
    pass
cur.execute("SELECT score FROM people WHERE id = 1")
assert cur.fetchone() == (10.5,)
cur.execute("UPDATE people SET score = 99 WHERE id = 1")
cur.execute(f"SELECT score FROM people AS OF TIMESTAMP '{committed}' WHERE id = 1")
assert cur.fetchone() == (10.5,), "AS OF the reported commit time"

try:
    cur.execute("INSERT INTO people (id, name) VALUES (1, 'again')")
    raise AssertionError("a duplicate key was accepted")
except psycopg.errors.UniqueViolation:
    pass

# A cancelled statement, then the connection goes on.
def cancel():
    time.sleep(1)
    conn.cancel()

t = threading.Thread(target=cancel)
t.start()
try:
    cur.execute("SELECT count(*) FROM people a, people b, people c, people d, people e, people f")
    raise AssertionError("the statement was not cancelled")
except psycopg.errors.QueryCanceled:
    pass
t.join()
cur.execute("SELECT 1")
assert cur.fetchone() == (1,)

# A server-side cursor, fetched in parts.
with conn.transaction():
    with conn.cursor(name="everyone") as sc:
        sc.execute("SELECT id, name FROM people WHERE id > %s ORDER BY id", (0,))
        head = sc.fetchmany(10)
        rest = sc.fetchall()
        assert [r[0] for r in head] == list(range(1, 11))
        assert len(rest) == 39 and rest[-1] == (49, "p49")

# COPY in: text format with awkward values, then CSV.
with cur.copy("COPY people (id, name, score, photo) FROM STDIN") as copy:
    copy.write_row((100, "tab\there", None, b"\x01\x02"))
    copy.write_row((101, "new\nline \\ back", 1.25, None))
with cur.copy("COPY people (id, name) FROM STDIN WITH (FORMAT csv)") as copy:
    copy.write(b'102,"comma, ""quote"""\n103,plain\n')
cur.execute("SELECT name, score, photo FROM people WHERE id >= 100 ORDER BY id")
assert cur.fetchall() == [
    ("tab\there", None, b"\x01\x02"),
    ("new\nline \\ back", 1.25, None),
    ('comma, "quote"', None, None),
    ("plain", None, None),
]

# A COPY with a bad row inserts nothing.
try:
    with cur.copy("COPY people (id, name) FROM STDIN") as copy:
        copy.write_row((200, "fine"))
        copy.write_row(("not a number", "bad"))
    raise AssertionError("a bad COPY row was accepted")
except psycopg.errors.BadCopyFileFormat:
    pass
cur.execute("SELECT count(*) FROM people WHERE id >= 200")
assert cur.fetchone() == (0,), "a failed COPY is all or nothing"

# COPY out, rows and CSV text.
with cur.copy("COPY (SELECT id, name, photo FROM people WHERE id IN (1, 100) ORDER BY id) TO STDOUT") as copy:
    rows = list(copy.rows())
assert rows == [("1", "Ada \u00e9 'quoted'", "\\x0001ff"), ("100", "tab\there", "\\x0102")], rows
with cur.copy("COPY people (id, name) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
    text = b"".join(bytes(b) for b in copy).decode()
assert text.startswith("id,name\n1,Ada \u00e9 'quoted'\n"), text
assert '102,"comma, ""quote"""\n' in text, text
print("psycopg: all checks passed")
