"""SQLAlchemy 2 (over psycopg 3) against `chronodb serve --pg`: the ORM creates its tables
(an Integer primary key is SERIAL), inserts, reads back the ids it was given, updates,
rolls a nested transaction (a SAVEPOINT) back, and reflects tables and columns through
pg_catalog. Exits non-zero on the first failed check."""
import sys

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

port = int(sys.argv[1])
engine = sa.create_engine(f"postgresql+psycopg://app@127.0.0.1:{port}/chronodb")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    balance: Mapped[float] = mapped_column(default=0.0)


Base.metadata.create_all(engine)

with Session(engine) as s:
    ann, bob = User(name="ann", balance=10.5), User(name="bob")
    s.add_all([ann, bob])
    s.commit()
    assert ann.id is not None and bob.id is not None and ann.id != bob.id, (ann.id, bob.id)
    ids = (ann.id, bob.id)

with Session(engine) as s:
    ann = s.scalars(sa.select(User).where(User.name == "ann")).one()
    assert ann.id == ids[0]
    ann.balance += 1
    s.commit()
    # A nested transaction is a SAVEPOINT: rolled back, its row is gone, the rest stays.
    with s.begin():
        s.add(User(name="dan"))
        nested = s.begin_nested()
        s.add(User(name="cy"))
        s.flush()
        nested.rollback()
    names = [u.name for u in s.scalars(sa.select(User).order_by(User.name))]
    assert names == ["ann", "bob", "dan"], names
    got = s.execute(sa.select(User.name, User.balance).order_by(User.id)).all()
    assert got[0] == ("ann", 11.5) and got[1] == ("bob", 0.0), got

inspector = sa.inspect(engine)
assert inspector.has_table("users")
assert "users" in inspector.get_table_names(), inspector.get_table_names()
columns = {c["name"]: c for c in inspector.get_columns("users")}
assert list(columns) == ["id", "name", "balance"], list(columns)
assert not columns["id"]["nullable"] and not columns["name"]["nullable"]
assert isinstance(columns["name"]["type"], sa.Text), columns["name"]["type"]
assert isinstance(columns["balance"]["type"], sa.Double), columns["balance"]["type"]

# Core, with a Table declared by hand (reflecting a whole Table reads its keys with
# PostgreSQL's arrays, which ChronoDB does not have yet).
users = sa.Table("users", sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True),
                 sa.Column("name", sa.Text))
with engine.begin() as c:
    assert c.execute(sa.select(sa.func.count()).select_from(users)).scalar() == 3
    c.execute(sa.update(users).where(users.c.name == "dan").values(name="dana"))
    assert c.execute(sa.select(users.c.name).where(users.c.id > ids[1])).scalar() == "dana"

Base.metadata.drop_all(engine)
assert not sa.inspect(engine).has_table("users")
print("all checks passed")
