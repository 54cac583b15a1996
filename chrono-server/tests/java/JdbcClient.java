// pgjdbc (PostgreSQL's JDBC driver) against `chronodb serve --pg`: prepared statements past
// the driver's threshold for server-side statements, typed values, a transaction with a
// savepoint rolled back, and DatabaseMetaData (tables and columns). Run as a
// single source file (java -cp postgresql.jar JdbcClient.java PORT); exits non-zero on the
// first failed check.
import java.sql.*;

public class JdbcClient {
    static void check(boolean ok, String what) { if (!ok) throw new AssertionError(what); }
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/chronodb";
        try (Connection c = DriverManager.getConnection(url, "app", "")) {
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE jt (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score DOUBLE PRECISION, at TIMESTAMP, ok BOOLEAN)");
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO jt VALUES (?, ?, ?, ?, ?)")) {
                for (int i = 1; i <= 10; i++) {
                    p.setLong(1, i); p.setString(2, "n" + i); p.setDouble(3, i / 2.0);
                    p.setTimestamp(4, Timestamp.valueOf("2024-01-02 03:04:05")); p.setBoolean(5, i % 2 == 0);
                    p.executeUpdate();
                }
            }
            try (PreparedStatement p = c.prepareStatement("SELECT name, score, ok FROM jt WHERE id = ?")) {
                for (int i = 0; i < 7; i++) {  // past prepareThreshold: a server-side prepared statement
                    p.setLong(1, 3);
                    try (ResultSet r = p.executeQuery()) {
                        check(r.next(), "a row"); check(r.getString(1).equals("n3"), "name"); check(r.getDouble(2) == 1.5, "score");
                        check(!r.getBoolean(3), "ok");
                    }
                }
            }
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.executeUpdate("UPDATE jt SET score = 0 WHERE id = 1");
                Savepoint sp = c.setSavepoint();
                s.executeUpdate("DELETE FROM jt");
                c.rollback(sp);
                c.commit();
                try (ResultSet r = s.executeQuery("SELECT count(*), sum(score) FROM jt")) {
                    r.next(); check(r.getLong(1) == 10, "count " + r.getLong(1));
                }
            }
            c.setAutoCommit(true);
            DatabaseMetaData md = c.getMetaData();
            check(md.getDatabaseProductName().equals("PostgreSQL"), md.getDatabaseProductName());
            try (ResultSet r = md.getTables(null, "public", "%", new String[] {"TABLE"})) {
                boolean found = false;
                while (r.next()) found |= r.getString("TABLE_NAME").equals("jt");
                check(found, "getTables lists jt");
            }
            try (ResultSet r = md.getColumns(null, "public", "jt", "%")) {
                int n = 0;
                String[] names = {"id", "name", "score", "at", "ok"};
                String[] types = {"int8", "text", "float8", "timestamptz", "bool"};
                while (r.next()) {
                    check(r.getString("COLUMN_NAME").equals(names[n]), "column " + n);
                    check(r.getString("TYPE_NAME").equals(types[n]), "type of " + names[n] + ": " + r.getString("TYPE_NAME"));
                    check(r.getInt("NULLABLE") == (n < 2 ? DatabaseMetaData.columnNoNulls : DatabaseMetaData.columnNullable), "nullable " + names[n]);
                    n++;
                }
                check(n == 5, "getColumns: " + n);
            }
            // getPrimaryKeys and getIndexInfo read pg_index's keys as PostgreSQL arrays
            // (information_schema._pg_expandarray), which ChronoDB does not have yet.
        }
        System.out.println("all checks passed");
    }
}
