/*
 * bench/libssh2_prep.c — the yardstick: what Debian's libssh2 allows on this machine.
 *
 * The bench's jobs as a plain C program: one thread and one blocking session per host, all hosts
 * at once, known_hosts parsed once and shared, no logging, no state, no retries. fleet is compared
 * with it to see how much its own layers (engine, results, state, deadlines) cost.
 *
 *   libssh2_prep JOB HOSTS_FILE IDENTITY KNOWN_HOSTS
 *
 * JOB:
 *   prep     the kernel-prep job (see scripts/bench): read disable_ipv6; write and apply the sysctl.d
 *            file; read forwarding back; `ip -6 addr show`; host 1's token to every other host, 0600,
 *            over stdin
 *   true     run `true` on every host
 *   connect  connect, check the host key and log in, nothing more
 *
 * The first address in HOSTS_FILE holds the token. Exit 0 when every host did the whole job.
 * Build: cc -O2 -o libssh2_prep bench/libssh2_prep.c -lssh2 -lpthread (scripts/bench does it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libssh2.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SYSCTL_FILE "/etc/sysctl.d/90-fleet-ipv6.conf"
#define TOKEN_SRC "/var/lib/rancher/k3s/server/node-token"
#define TOKEN_DEST "/etc/rancher/k3s/token"

static const char *sysctl_content =
    "net.ipv6.conf.all.disable_ipv6 = 0\n"
    "net.ipv6.conf.all.forwarding = 1\n"
    "net.ipv6.conf.default.forwarding = 1\n";

static const char *job, *identity;
static LIBSSH2_KNOWNHOSTS *known; /* parsed once, read by every thread */

/* Host 1's token, handed to the other hosts' threads. */
static pthread_mutex_t token_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t token_ready = PTHREAD_COND_INITIALIZER;
static char token[512];
static size_t token_len;
static int token_state; /* 0 waiting, 1 ready, -1 host 1 failed */

struct host {
    char addr[256];
    int index;
    int ok;
    char error[256];
};

static int fail(struct host *h, const char *what, LIBSSH2_SESSION *s)
{
    char *msg = NULL;
    if (s) libssh2_session_last_error(s, &msg, NULL, 0);
    snprintf(h->error, sizeof h->error, "%s%s%s", what, msg ? ": " : "", msg ? msg : "");
    return -1;
}

static int tcp_connect(const char *addr)
{
    struct addrinfo hints = {0}, *res;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST;
    if (getaddrinfo(addr, "22", &hints, &res) != 0) return -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

/* Runs one command, with optional stdin; keeps at most `cap` bytes of stdout. Exit status or -1. */
static int run(LIBSSH2_SESSION *s, const char *cmd, const char *in, size_t in_len, char *out, size_t cap, size_t *out_len)
{
    LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(s);
    if (!ch) return -1;
    if (libssh2_channel_exec(ch, cmd) != 0) {
        libssh2_channel_free(ch);
        return -1;
    }
    if (in_len) {
        size_t sent = 0;
        while (sent < in_len) {
            ssize_t n = libssh2_channel_write(ch, in + sent, in_len - sent);
            if (n < 0) break;
            sent += (size_t)n;
        }
    }
    libssh2_channel_send_eof(ch);
    char buf[4096];
    size_t kept = 0;
    for (int stream = 0; stream < 2; stream++) {
        ssize_t n;
        while ((n = libssh2_channel_read_ex(ch, stream, buf, sizeof buf)) > 0) {
            if (stream == 0 && out && kept < cap) {
                size_t take = (size_t)n < cap - kept ? (size_t)n : cap - kept;
                memcpy(out + kept, buf, take);
                kept += take;
            }
        }
    }
    if (out_len) *out_len = kept;
    libssh2_channel_close(ch);
    libssh2_channel_wait_closed(ch);
    int status = libssh2_channel_get_exit_status(ch);
    libssh2_channel_free(ch);
    return status;
}

static int check_host_key(struct host *h, LIBSSH2_SESSION *s)
{
    size_t len;
    int type;
    const char *key = libssh2_session_hostkey(s, &len, &type);
    if (!key) return fail(h, "no host key", s);
    int mask;
    switch (type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA: mask = LIBSSH2_KNOWNHOST_KEY_SSHRSA; break;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: mask = LIBSSH2_KNOWNHOST_KEY_ECDSA_256; break;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: mask = LIBSSH2_KNOWNHOST_KEY_ECDSA_384; break;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: mask = LIBSSH2_KNOWNHOST_KEY_ECDSA_521; break;
    case LIBSSH2_HOSTKEY_TYPE_ED25519: mask = LIBSSH2_KNOWNHOST_KEY_ED25519; break;
    default: return fail(h, "unknown host key type", NULL);
    }
    struct libssh2_knownhost *entry;
    int rc = libssh2_knownhost_checkp(known, h->addr, 22, key, len,
                                      LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | mask, &entry);
    if (rc != LIBSSH2_KNOWNHOST_CHECK_MATCH) return fail(h, "host key not in known_hosts", NULL);
    return 0;
}

static int prep(struct host *h, LIBSSH2_SESSION *s)
{
    if (run(s, "cat /proc/sys/net/ipv6/conf/all/disable_ipv6", NULL, 0, NULL, 0, NULL) != 0)
        return fail(h, "read disable_ipv6", s);
    if (run(s, "cat > " SYSCTL_FILE " && sysctl -p " SYSCTL_FILE, sysctl_content, strlen(sysctl_content), NULL, 0, NULL) != 0)
        return fail(h, "sysctl", s);
    if (run(s, "sysctl -n net.ipv6.conf.all.forwarding", NULL, 0, NULL, 0, NULL) != 0)
        return fail(h, "read forwarding", s);
    if (run(s, "ip -6 addr show", NULL, 0, NULL, 0, NULL) != 0)
        return fail(h, "ip -6 addr", s);
    if (h->index == 0) {
        size_t n = 0;
        int rc = run(s, "cat " TOKEN_SRC, NULL, 0, token, sizeof token, &n);
        pthread_mutex_lock(&token_lock);
        token_len = n;
        token_state = rc == 0 ? 1 : -1;
        pthread_cond_broadcast(&token_ready);
        pthread_mutex_unlock(&token_lock);
        return rc == 0 ? 0 : fail(h, "read token", s);
    }
    pthread_mutex_lock(&token_lock);
    while (token_state == 0) pthread_cond_wait(&token_ready, &token_lock);
    int state = token_state;
    pthread_mutex_unlock(&token_lock);
    if (state < 0) return fail(h, "host 1 had no token", NULL);
    if (run(s, "umask 077; mkdir -p /etc/rancher/k3s && cat > " TOKEN_DEST, token, token_len, NULL, 0, NULL) != 0)
        return fail(h, "write token", s);
    return 0;
}

static void *work(void *arg)
{
    struct host *h = arg;
    int fd = tcp_connect(h->addr);
    if (fd < 0) {
        snprintf(h->error, sizeof h->error, "connect: %s", strerror(errno));
        if (h->index == 0 && strcmp(job, "prep") == 0) {
            pthread_mutex_lock(&token_lock);
            token_state = -1;
            pthread_cond_broadcast(&token_ready);
            pthread_mutex_unlock(&token_lock);
        }
        return NULL;
    }
    LIBSSH2_SESSION *s = libssh2_session_init();
    libssh2_session_set_timeout(s, 60000);
    libssh2_session_method_pref(s, LIBSSH2_METHOD_KEX, "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256");
    libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, "ssh-ed25519,ecdsa-sha2-nistp256,ssh-rsa");
    int rc = -1;
    if (libssh2_session_handshake(s, fd) != 0) fail(h, "handshake", s);
    else if (check_host_key(h, s) != 0) {}
    else if (libssh2_userauth_publickey_fromfile(s, "root", NULL, identity, NULL) != 0) fail(h, "auth", s);
    else if (strcmp(job, "connect") == 0) rc = 0;
    else if (strcmp(job, "true") == 0) rc = run(s, "true", NULL, 0, NULL, 0, NULL) == 0 ? 0 : fail(h, "true", s);
    else rc = prep(h, s);
    if (rc != 0 && h->index == 0 && strcmp(job, "prep") == 0) {
        pthread_mutex_lock(&token_lock);
        if (token_state == 0) token_state = -1;
        pthread_cond_broadcast(&token_ready);
        pthread_mutex_unlock(&token_lock);
    }
    h->ok = rc == 0;
    libssh2_session_disconnect(s, "done");
    libssh2_session_free(s);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[1], "prep") && strcmp(argv[1], "true") && strcmp(argv[1], "connect"))) {
        fprintf(stderr, "usage: %s prep|true|connect HOSTS_FILE IDENTITY KNOWN_HOSTS\n", argv[0]);
        return 2;
    }
    job = argv[1];
    identity = argv[3];
    FILE *f = fopen(argv[2], "r");
    if (!f) { perror(argv[2]); return 2; }
    size_t n = 0, cap = 64;
    struct host *hosts = calloc(cap, sizeof *hosts);
    char line[256];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, " \t\r\n")] = 0;
        if (!line[0]) continue;
        if (n == cap) hosts = realloc(hosts, (cap *= 2) * sizeof *hosts);
        memset(&hosts[n], 0, sizeof hosts[n]);
        snprintf(hosts[n].addr, sizeof hosts[n].addr, "%s", line);
        hosts[n].index = (int)n;
        n++;
    }
    fclose(f);

    libssh2_init(0);
    LIBSSH2_SESSION *owner = libssh2_session_init();
    known = libssh2_knownhost_init(owner);
    if (libssh2_knownhost_readfile(known, argv[4], LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
        fprintf(stderr, "cannot read %s\n", argv[4]);
        return 2;
    }

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t *threads = calloc(n, sizeof *threads);
    for (size_t i = 0; i < n; i++) pthread_create(&threads[i], &attr, work, &hosts[i]);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        pthread_join(threads[i], NULL);
        if (!hosts[i].ok) {
            failed++;
            fprintf(stderr, "libssh2_prep: %s: %s\n", hosts[i].addr, hosts[i].error);
        }
    }
    libssh2_knownhost_free(known);
    libssh2_session_free(owner);
    libssh2_exit();
    return failed ? 1 : 0;
}
