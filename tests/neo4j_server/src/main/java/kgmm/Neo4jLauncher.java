package kgmm;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Map;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.io.ByteUnit;
import org.neo4j.logging.log4j.Log4jLogProvider;

/**
 * Runs a Neo4j 5.26 Community DBMS in this JVM with only the Bolt connector enabled,
 * for kgmm's tests.
 *
 * <pre>
 * usage: java -cp CLASSPATH kgmm.Neo4jLauncher HOME_DIR BOLT_PORT [PASSWORD] [options]
 *
 *   HOME_DIR   Neo4j home; the store goes to HOME_DIR/data, logs to HOME_DIR/logs.
 *              Created when missing; reusing it keeps the data (restart).
 *   BOLT_PORT  TCP port for Bolt, bound on --host (default 127.0.0.1).
 *   PASSWORD   password for the 'neo4j' user.  Prefer the environment variable
 *              KGMM_NEO4J_PASSWORD so the password never shows up in `ps`.
 *
 * options:
 *   --host=ADDR         listen address (default 127.0.0.1)
 *   --pagecache=SIZE    page cache size, e.g. 256m (default 256m)
 *   --ignore-stdin      do not shut down when stdin reaches end-of-file
 *                       (then only SIGTERM / SIGINT stop the server)
 * </pre>
 *
 * Protocol: once the DBMS is up, the password is set and Bolt accepts connections, exactly
 * one line {@code KGMM_NEO4J_READY bolt://HOST:PORT} is printed on stdout.  The process then
 * blocks until stdin is closed (the parent died or asked us to stop) or a SIGTERM/SIGINT
 * arrives, and shuts the DBMS down cleanly.  Any failure prints a single line starting with
 * {@code KGMM_NEO4J_FAILED} on stderr and exits with status 1 (2 for usage errors).
 * Neo4j's own user log goes to stderr; its debug log goes to HOME_DIR/logs/debug.log.
 */
public final class Neo4jLauncher {

    static final String READY_MARKER = "KGMM_NEO4J_READY";
    static final String FAILED_MARKER = "KGMM_NEO4J_FAILED";
    static final String PASSWORD_ENV = "KGMM_NEO4J_PASSWORD";
    static final String ADMIN_USER = "neo4j";

    private static final Object LOCK = new Object();
    private static DatabaseManagementService dbms;
    private static boolean stopped;

    private Neo4jLauncher() {}

    public static void main(String[] args) {
        // Keep a handle on the real stdout: it carries only the READY line.
        PrintStream out = System.out;
        Options opts;
        try {
            opts = Options.parse(args);
        } catch (IllegalArgumentException e) {
            fail(2, "bad arguments: " + e.getMessage()
                    + " (usage: kgmm.Neo4jLauncher HOME_DIR BOLT_PORT [PASSWORD] [--host=ADDR]"
                    + " [--pagecache=SIZE] [--ignore-stdin]; password via $" + PASSWORD_ENV + ")");
            return;
        }
        // Anything else that writes to System.out (libraries) goes to stderr instead.
        System.setOut(System.err);

        Runtime.getRuntime().addShutdownHook(new Thread(Neo4jLauncher::shutdown, "kgmm-neo4j-shutdown"));

        try {
            start(opts);
        } catch (Throwable t) {
            shutdown();
            fail(1, "could not start Neo4j on " + opts.host + ":" + opts.port + " (home "
                    + opts.home + "): " + describe(t));
            return;
        }

        out.println(READY_MARKER + " bolt://" + opts.host + ":" + opts.port);
        out.flush();

        if (opts.ignoreStdin) {
            blockForever();
        } else {
            drainUntilEof(System.in);
            shutdown();
            System.exit(0);
        }
    }

    private static void start(Options opts) throws Exception {
        Files.createDirectories(opts.home);
        checkPortFree(opts.host, opts.port);
        DatabaseManagementServiceBuilder builder = new DatabaseManagementServiceBuilder(opts.home)
                // Neo4j's user-facing log ("Started.", errors) on stderr.
                .setUserLogProvider(new Log4jLogProvider(System.err))
                // Bolt only, loopback, plain text.
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress(opts.host, opts.port))
                .setConfig(BoltConnector.advertised_address, new SocketAddress(opts.host, opts.port))
                .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                // Do not linger 2 x 5 s on shutdown waiting for idle Bolt connections/threads.
                .setConfig(BoltConnectorInternalSettings.connection_shutdown_wait_time, Duration.ofSeconds(1))
                .setConfig(BoltConnectorInternalSettings.thread_pool_shutdown_wait_time, Duration.ofSeconds(1))
                .setConfig(HttpConnector.enabled, false)
                .setConfig(HttpsConnector.enabled, false)
                // Authentication on; short test passwords allowed; no lock-out after failed
                // logins (tests deliberately try wrong passwords).
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                .setConfig(GraphDatabaseSettings.auth_minimum_password_length, 1)
                .setConfig(GraphDatabaseSettings.auth_max_failed_attempts, 0)
                // Small footprint: the machine is shared with the test process.
                .setConfig(GraphDatabaseSettings.pagecache_memory, opts.pageCacheBytes)
                .setConfig(GraphDatabaseSettings.pagecache_warmup_enabled, false)
                .setConfig(GraphDatabaseSettings.logical_log_rotation_threshold, ByteUnit.mebiBytes(16))
                .setConfig(GraphDatabaseSettings.keep_logical_logs, "2 files")
                .setConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
                .setConfig(GraphDatabaseSettings.shutdown_transaction_end_timeout, Duration.ofSeconds(5))
                .setConfig(GraphDatabaseSettings.udc_enabled, false);

        DatabaseManagementService service = builder.build();
        synchronized (LOCK) {
            if (stopped) {
                // SIGTERM arrived while we were starting.
                service.shutdown();
                throw new IllegalStateException("stopped during startup");
            }
            dbms = service;
        }

        GraphDatabaseService system = service.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        if (!system.isAvailable(Duration.ofMinutes(2).toMillis())) {
            throw new IllegalStateException("system database did not become available");
        }
        setAdminPassword(system, opts.password);

        GraphDatabaseService neo4j = service.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
        if (!neo4j.isAvailable(Duration.ofMinutes(2).toMillis())) {
            throw new IllegalStateException("database '" + GraphDatabaseSettings.DEFAULT_DATABASE_NAME
                    + "' did not become available");
        }
        awaitPortOpen(opts.host, opts.port, Duration.ofSeconds(30));
    }

    /**
     * Sets the 'neo4j' user's password and clears the "change required" flag.  Embedded
     * transactions run with full privileges, so the administration command can be executed
     * directly against the system database.  Neo4j refuses to "change" a password to its current
     * value (e.g. on restart with the same home directory); in that case go through a random
     * intermediate password, which avoids matching on error messages.
     */
    private static void setAdminPassword(GraphDatabaseService system, String password) {
        String alter = "ALTER USER " + ADMIN_USER + " SET PASSWORD $pw CHANGE NOT REQUIRED";
        try {
            system.executeTransactionally(alter, Map.of("pw", password));
        } catch (RuntimeException sameOrOther) {
            byte[] random = new byte[24];
            new SecureRandom().nextBytes(random);
            system.executeTransactionally(alter, Map.of("pw", "tmp-" + HexFormat.of().formatHex(random)));
            system.executeTransactionally(alter, Map.of("pw", password));
        }
    }

    /** Fails fast (instead of after a full DBMS start and stop) when the port is taken. */
    private static void checkPortFree(String host, int port) {
        try (ServerSocket probe = new ServerSocket()) {
            probe.setReuseAddress(true);
            probe.bind(new InetSocketAddress(host, port));
        } catch (IOException e) {
            throw new IllegalStateException("cannot bind Bolt port " + host + ":" + port
                    + " (Address already in use?)", e);
        }
    }

    private static void awaitPortOpen(String host, int port, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        IOException last = null;
        while (System.nanoTime() < deadline) {
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress(host, port), 1000);
                return;
            } catch (IOException e) {
                last = e;
                Thread.sleep(100);
            }
        }
        throw new IllegalStateException("Bolt port " + host + ":" + port + " is not accepting connections", last);
    }

    static void shutdown() {
        synchronized (LOCK) {
            if (stopped) {
                return;
            }
            stopped = true;
            if (dbms != null) {
                try {
                    dbms.shutdown();
                } catch (Throwable t) {
                    System.err.println(FAILED_MARKER + " error during shutdown: " + describe(t));
                }
                dbms = null;
                System.err.println("KGMM_NEO4J_STOPPED");
                System.err.flush();
            }
        }
    }

    private static void drainUntilEof(InputStream in) {
        byte[] buffer = new byte[256];
        try {
            while (in.read(buffer) >= 0) {
                // ignore input; we only care about end-of-file
            }
        } catch (IOException e) {
            // a broken stdin means the parent is gone: stop as well
        }
    }

    private static void blockForever() {
        Object never = new Object();
        synchronized (never) {
            while (true) {
                try {
                    never.wait();
                } catch (InterruptedException e) {
                    return;
                }
            }
        }
    }

    private static void fail(int status, String message) {
        System.err.println(FAILED_MARKER + " " + message.replace('\n', ' ').replace('\r', ' '));
        System.err.flush();
        // halt: do not wait for Neo4j's non-daemon threads (shutdown() already ran).
        Runtime.getRuntime().halt(status);
    }

    /** One line: the chain of exception messages, outermost first, skipping repeated ones. */
    static String describe(Throwable t) {
        StringBuilder sb = new StringBuilder();
        String lastMessage = "";
        int depth = 0;
        for (Throwable cur = t; cur != null && depth < 8; cur = cur.getCause(), depth++) {
            String msg = cur.getMessage() == null ? "" : cur.getMessage().strip();
            if (depth > 0 && !msg.isEmpty() && lastMessage.contains(msg)) {
                continue;
            }
            if (sb.length() > 0) {
                sb.append(" <- ");
            }
            sb.append(cur.getClass().getSimpleName());
            if (!msg.isEmpty()) {
                sb.append(": ").append(msg);
                lastMessage = msg;
            }
        }
        return sb.toString();
    }

    static final class Options {
        Path home;
        int port;
        String password;
        String host = "127.0.0.1";
        long pageCacheBytes = ByteUnit.mebiBytes(256);
        boolean ignoreStdin;

        static Options parse(String[] args) {
            Options o = new Options();
            java.util.List<String> positional = new java.util.ArrayList<>();
            for (String arg : args) {
                if (arg.equals("--ignore-stdin")) {
                    o.ignoreStdin = true;
                } else if (arg.startsWith("--host=")) {
                    o.host = arg.substring("--host=".length());
                } else if (arg.startsWith("--pagecache=")) {
                    o.pageCacheBytes = parseBytes(arg.substring("--pagecache=".length()));
                } else if (arg.startsWith("--")) {
                    throw new IllegalArgumentException("unknown option " + arg);
                } else {
                    positional.add(arg);
                }
            }
            if (positional.size() < 2 || positional.size() > 3) {
                throw new IllegalArgumentException("expected HOME_DIR BOLT_PORT [PASSWORD]");
            }
            o.home = Path.of(positional.get(0)).toAbsolutePath().normalize();
            try {
                o.port = Integer.parseInt(positional.get(1));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("BOLT_PORT is not a number: " + positional.get(1));
            }
            if (o.port < 1 || o.port > 65535) {
                throw new IllegalArgumentException("BOLT_PORT out of range: " + o.port);
            }
            o.password = positional.size() == 3 ? positional.get(2) : System.getenv(PASSWORD_ENV);
            if (o.password == null || o.password.isEmpty()) {
                throw new IllegalArgumentException("no password: set $" + PASSWORD_ENV + " or pass PASSWORD");
            }
            return o;
        }

        static long parseBytes(String text) {
            String s = text.trim().toLowerCase();
            long unit = 1;
            if (s.endsWith("k")) {
                unit = ByteUnit.kibiBytes(1);
            } else if (s.endsWith("m")) {
                unit = ByteUnit.mebiBytes(1);
            } else if (s.endsWith("g")) {
                unit = ByteUnit.gibiBytes(1);
            }
            if (unit != 1) {
                s = s.substring(0, s.length() - 1);
            }
            try {
                return Long.parseLong(s) * unit;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("bad size: " + text);
            }
        }
    }
}
