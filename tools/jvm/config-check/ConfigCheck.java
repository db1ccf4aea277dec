/*
 * ConfigCheck: judges a broker or proxy configuration file with Apache
 * Pulsar's own code (pulsar-broker-common / pulsar-proxy 4.0.6), the way
 * the broker and the proxy load it at start-up. Part of magnetar's test
 * toolkit (tools/build-jvm.sh compiles it; see docs/testing.md).
 *
 * Usage: ConfigCheck broker|proxy <file>
 *
 * Output, one item a line on stdout (logs of Pulsar's code go to stderr):
 *   unknown-key <key>          a key that is no field of the configuration class
 *                              (the broker keeps it as a plain property, e.g. for
 *                              a protocol handler); reported, not an error
 *   deprecated-key <key>       a field marked deprecated; not an error
 *   listener <name> <uri>      an advertised listener, as the broker parsed it
 *   bind-address <name> <uri>  an address the broker binds ("-": no name)
 *   authentication-provider <class>  a provider AuthenticationService initialised
 *   client-authentication <method>   the brokerClientAuthenticationPlugin, started
 *   tls-file <key> <what>      a PEM file a TLS key names, read as the server's
 *                              TLS context reads it (SecurityUtility)
 *   error <check>: <message>   a check failed
 *   ok                         last line when no check failed
 * Exit: 0 valid (unknown keys allowed), 1 a check failed, 2 bad usage.
 */

import java.io.FileInputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import org.apache.pulsar.broker.ServiceConfiguration;
import org.apache.pulsar.broker.authentication.AuthenticationService;
import org.apache.pulsar.client.api.Authentication;
import org.apache.pulsar.client.api.AuthenticationFactory;
import org.apache.pulsar.broker.validator.BindAddressValidator;
import org.apache.pulsar.broker.validator.MultipleListenerValidator;
import org.apache.pulsar.common.configuration.BindAddress;
import org.apache.pulsar.common.configuration.FieldContext;
import org.apache.pulsar.common.configuration.PulsarConfiguration;
import org.apache.pulsar.common.configuration.PulsarConfigurationLoader;
import org.apache.pulsar.common.util.SecurityUtility;
import org.apache.pulsar.policies.data.loadbalancer.AdvertisedListener;

public final class ConfigCheck {
    private static final String PROXY_CONFIGURATION = "org.apache.pulsar.proxy.server.ProxyConfiguration";
    private static final String PROXY_STARTER = "org.apache.pulsar.proxy.server.ProxyServiceStarter";

    private final PrintStream out;
    private int errors;

    private ConfigCheck(PrintStream out) {
        this.out = out;
    }

    public static void main(String[] args) {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        int rc;
        if (args.length != 2 || !(args[0].equals("broker") || args[0].equals("proxy"))) {
            System.err.println("usage: ConfigCheck broker|proxy <file>");
            rc = 2;
        } else if (!Files.isRegularFile(Paths.get(args[1]))) {
            System.err.println("ConfigCheck: no such file: " + args[1]);
            rc = 2;
        } else {
            try {
                rc = new ConfigCheck(out).run(args[0], args[1]);
            } catch (Throwable t) {
                out.println("error ConfigCheck: " + describe(t));
                rc = 1;
            }
        }
        out.flush();
        // Pulsar's classes may leave non-daemon threads behind.
        System.exit(rc);
    }

    private int run(String kind, String file) throws Exception {
        boolean broker = kind.equals("broker");
        Class<?> cls = broker ? ServiceConfiguration.class : Class.forName(PROXY_CONFIGURATION);

        // The keys as PulsarConfigurationLoader reads them: java.util.Properties.
        Properties properties = new Properties();
        try (InputStream in = new FileInputStream(file)) {
            properties.load(in);
        }
        reportKeys(cls, properties);

        // Exactly what PulsarBrokerStarter / ProxyServiceStarter do first.
        PulsarConfiguration config;
        try {
            @SuppressWarnings("unchecked")
            Class<? extends PulsarConfiguration> c = (Class<? extends PulsarConfiguration>) cls;
            config = PulsarConfigurationLoader.create(file, c);
        } catch (Exception e) {
            error("PulsarConfigurationLoader", e);
            return 1;
        }

        if (broker) {
            checkBroker((ServiceConfiguration) config);
        } else {
            checkProxy(file);
        }
        // The proxy builds its AuthenticationService from the converted
        // configuration too (ProxyService).
        checkAuthentication(broker ? (ServiceConfiguration) config : PulsarConfigurationLoader.convertFrom(config));
        checkTlsFiles(properties);
        if (errors == 0) {
            out.println("ok");
            return 0;
        }
        return 1;
    }

    /**
     * FieldParser.update sets a field for each property whose name equals the
     * name of a field declared by the configuration class itself (getDeclaredFields:
     * superclasses are not looked at); every other key stays a plain property.
     */
    private void reportKeys(Class<?> cls, Properties properties) {
        TreeSet<String> keys = new TreeSet<>(properties.stringPropertyNames());
        for (String key : keys) {
            Field field = declaredField(cls, key);
            if (field == null) {
                out.println("unknown-key " + key);
            } else if (isDeprecated(field)) {
                out.println("deprecated-key " + key);
            }
        }
    }

    private static Field declaredField(Class<?> cls, String name) {
        for (Field f : cls.getDeclaredFields()) {
            if (f.getName().equals(name) && !Modifier.isStatic(f.getModifiers())) {
                return f;
            }
        }
        return null;
    }

    private static boolean isDeprecated(Field f) {
        FieldContext ctx = f.getAnnotation(FieldContext.class);
        return f.isAnnotationPresent(Deprecated.class) || (ctx != null && ctx.deprecated());
    }

    /** The checks of PulsarBrokerStarter, PulsarService and BrokerService, in their order. */
    private void checkBroker(ServiceConfiguration config) {
        try {
            PulsarConfigurationLoader.isComplete(config);
        } catch (Exception e) {
            error("PulsarConfigurationLoader.isComplete", e);
        }
        try {
            Map<String, AdvertisedListener> listeners =
                    MultipleListenerValidator.validateAndAnalysisAdvertisedListener(config);
            for (Map.Entry<String, AdvertisedListener> e : listeners.entrySet()) {
                AdvertisedListener l = e.getValue();
                for (URI uri : Arrays.asList(l.getBrokerServiceUrl(), l.getBrokerServiceUrlTls(),
                        l.getBrokerHttpUrl(), l.getBrokerHttpsUrl())) {
                    if (uri != null) {
                        out.println("listener " + e.getKey() + " " + uri);
                    }
                }
            }
        } catch (Exception e) {
            error("MultipleListenerValidator", e);
        }
        try {
            for (BindAddress a : BindAddressValidator.validateBindAddresses(config, null)) {
                out.println("bind-address " + (a.getListenerName() == null ? "-" : a.getListenerName())
                        + " " + a.getAddress());
            }
            // BrokerService.start: the Pulsar protocol needs at least one.
            List<BindAddress> pulsar =
                    BindAddressValidator.validateBindAddresses(config, Arrays.asList("pulsar", "pulsar+ssl"));
            if (pulsar.isEmpty()) {
                out.println("error BrokerService: At least one broker bind address must be configured");
                errors++;
            }
        } catch (Exception e) {
            error("BindAddressValidator", e);
        }
    }

    /**
     * What start-up does with the security settings: AuthenticationService
     * initialises every provider (the token provider reads its key), and the
     * internal client builds its plugin from the configured parameters (a
     * token file is read).
     */
    private void checkAuthentication(ServiceConfiguration config) {
        if (config.isAuthenticationEnabled()) {
            try {
                AuthenticationService service = new AuthenticationService(config);
                for (String provider : config.getAuthenticationProviders()) {
                    out.println("authentication-provider " + provider);
                }
                service.close();
            } catch (Throwable e) {
                error("AuthenticationService", e);
            }
        }
        String plugin = config.getBrokerClientAuthenticationPlugin();
        if (plugin == null || plugin.isEmpty() || plugin.endsWith(".AuthenticationDisabled")) {
            return;
        }
        try {
            Authentication auth = AuthenticationFactory.create(plugin, config.getBrokerClientAuthenticationParameters());
            auth.start();
            if (auth.getAuthMethodName().equals("token")) {
                // AuthenticationToken reads its file here.
                auth.getAuthData().getCommandData();
            }
            out.println("client-authentication " + auth.getAuthMethodName());
            auth.close();
        } catch (Throwable e) {
            error("brokerClientAuthentication", e);
        }
    }

    /**
     * The PEM files of the server's TLS context (broker and proxy use the same
     * keys): read with SecurityUtility, Pulsar's PEM reader, so a wrong path
     * or a Secret key that holds no PEM fails here rather than at the first
     * TLS connection.
     */
    private void checkTlsFiles(Properties properties) {
        for (String key : new String[] {"tlsCertificateFilePath", "tlsTrustCertsFilePath", "tlsKeyFilePath"}) {
            String path = properties.getProperty(key, "").trim();
            if (path.isEmpty()) {
                continue;
            }
            try {
                if (key.equals("tlsKeyFilePath")) {
                    PrivateKey k = SecurityUtility.loadPrivateKeyFromPemFile(path);
                    if (k == null) {
                        throw new IllegalStateException("no private key in " + path);
                    }
                    out.println("tls-file " + key + " " + k.getAlgorithm() + " key");
                } else {
                    X509Certificate[] certs = SecurityUtility.loadCertificatesFromPemFile(path);
                    if (certs == null || certs.length == 0) {
                        throw new IllegalStateException("no certificate in " + path);
                    }
                    out.println("tls-file " + key + " " + certs.length + " certificate(s)");
                }
            } catch (Throwable e) {
                error("TLS " + key, e);
            }
        }
    }

    /** ProxyServiceStarter's constructor: loads the file and checks its URLs (it starts nothing). */
    private void checkProxy(String file) {
        try {
            Class.forName(PROXY_STARTER)
                    .getConstructor(String[].class, java.util.function.Consumer.class, boolean.class)
                    .newInstance(new String[] {"-c", file}, null, true);
        } catch (java.lang.reflect.InvocationTargetException e) {
            error("ProxyServiceStarter", e.getCause());
        } catch (Exception e) {
            error("ProxyServiceStarter", e);
        }
    }

    private void error(String check, Throwable t) {
        out.println("error " + check + ": " + describe(t));
        errors++;
    }

    /**
     * The messages of an exception and of its causes, on one line; a message
     * that only wraps its cause's (e.g. "java.lang.X: <cause's>") is left out.
     */
    private static String describe(Throwable t) {
        StringBuilder b = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            String m = c.getMessage() == null ? c.getClass().getName() : c.getMessage();
            Throwable next = c.getCause();
            if (next != null && next != c && next.getMessage() != null && m.contains(next.getMessage())) {
                continue;
            }
            if (b.indexOf(m) < 0) {
                if (b.length() > 0) {
                    b.append(": ");
                }
                b.append(m);
            }
        }
        return b.toString().replaceAll("\\s*[\\r\\n]+\\s*", " ").trim();
    }
}
