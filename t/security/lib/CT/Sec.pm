package CT::Sec;
# Helpers for the security and limits tests (t/security): loopback origins
# that count the connections they get, CONNECT requests to a port, the
# Proxy-Status error type, reading the error log from a mark, a throw-away
# httpd (for "httpd -t" and for the built-in guard, which the shared test
# server cannot show because its main server allows loopback), and
# running a test inside its own network namespace where only loopback
# exists, so that nothing a module bug lets through can leave the machine.
# Every wait is bounded; only processes started here are signalled.
use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::IP;
use POSIX qw(WNOHANG);
use Socket qw(SOMAXCONN);
use Time::HiRes qw(time sleep);
use Apache::Test ();
use CT::Raw qw(read_head);

our @EXPORT_OK = qw(free_port listener take_accepts connect_via tunnel_via echo_ok
                    ps_error log_mark log_since wait_log count_lines
                    wait_count config_test standalone_config
                    start_httpd stop_httpd in_netns have_netns_tools
                    closed_within no_crash relay_mode);

# Seconds any single wait may take before a test gives up.
our $WAIT = 10;

my %httpd_pids;     # pid => pidfile, for servers started here

# A port that was free on loopback a moment ago.
sub free_port {
    my $s = IO::Socket::IP->new(LocalHost => '127.0.0.1', LocalPort => 0,
                                Listen => 1, ReuseAddr => 1)
        or die "free port: $@";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# A listening socket on a loopback address (or, inside a private network
# namespace only, a wildcard one); port 0 picks a free one.
sub listener {
    my ($addr, %o) = @_;
    my $s = IO::Socket::IP->new(
        LocalHost => $addr,
        LocalPort => $o{port} // 0,
        Listen    => $o{backlog} // SOMAXCONN,
        ReuseAddr => 1,
        ($addr =~ /:/ ? (V6Only => 1) : ()),
    ) or die "listen on $addr: $@";
    $s->blocking(0);
    return $s;
}

# Accept every connection waiting on the listeners, waiting up to $wait
# seconds for the first; returns the accepted sockets.
sub take_accepts {
    my ($wait, @listeners) = @_;
    my $sel = IO::Select->new(@listeners);
    my $deadline = time + ($wait // 0);
    my @got;
    while (1) {
        my $left = $deadline - time;
        $left = 0 if $left < 0 || @got;
        my @ready = $sel->can_read($left);
        last unless @ready;
        my $n = 0;
        for my $l (@ready) {
            while (my $c = $l->accept) {
                $c->autoflush(1);
                push @got, $c;
                $n++;
            }
        }
        last unless $n;
    }
    return @got;
}

# A connection to a proxy port on 127.0.0.1, optionally from another
# loopback source address.
sub connect_via {
    my ($port, %o) = @_;
    my $s = IO::Socket::IP->new(
        PeerHost => $o{peer} // '127.0.0.1',
        PeerPort => $port,
        ($o{from} ? (LocalHost => $o{from}) : ()),
        Timeout  => $WAIT,
    ) or die "connect to proxy port $port: $@";
    $s->autoflush(1);
    return $s;
}

# CONNECT $target through the proxy on $port; returns the socket, the
# status, the headers (lower-case keys) and the head text.
sub tunnel_via {
    my ($port, $target, %o) = @_;
    my $s = connect_via($port, %o);
    print $s "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";
    my ($status, $h, $head) = read_head($s, $o{wait});
    return ($s, $status // 0, $h // {}, $head // '');
}

# Send a line one way and another back through an established tunnel
# whose origin end is $o; true when both arrive intact.
sub echo_ok {
    my ($c, $o, $tag) = @_;
    my $up = "up $tag\n";
    my $down = "down $tag\n";
    print $c $up;
    return 0 unless CT::Raw::read_bytes($o, length $up) eq $up;
    print $o $down;
    return CT::Raw::read_bytes($c, length $down) eq $down;
}

# The error type of an RFC 9209 Proxy-Status header ("name; error=type"),
# or '' when there is none or it is not in that shape.
sub ps_error {
    my $h = shift;
    my $v = $h->{'proxy-status'} // return '';
    return $v =~ /^\s*(?:[A-Za-z*][\w:\/!#\$%&'*+\-.^`|~]*|"[^"]*")\s*;\s*error=([a-z_]+)\s*$/
           ? $1 : '';
}

# The error log of the shared test server, or of a standalone one.
sub error_log_file { $_[0] // Apache::Test::vars('t_logs') . '/error_log' }

# Where a log file ends now; log_since reads what was added after it.
sub log_mark {
    my $file = error_log_file(shift);
    return -s $file // 0;
}

sub log_since {
    my ($mark, $file) = @_;
    $file = error_log_file($file);
    open my $fh, '<', $file or return '';
    seek $fh, $mark, 0;
    local $/;
    return <$fh> // '';
}

# Wait (bounded) until a line matching $re appears after $mark; returns
# the matching line or ''.
sub wait_log {
    my ($mark, $re, $wait, $file) = @_;
    my $deadline = time + ($wait // $WAIT);
    while (1) {
        for (split /\n/, log_since($mark, $file)) {
            return $_ if /$re/;
        }
        return '' if time > $deadline;
        sleep 0.1;
    }
}

# Lines of a log of the shared test server (a name under t/logs)
# matching $re.
sub count_lines {
    my ($name, $re) = @_;
    my $file = Apache::Test::vars('t_logs') . "/$name";
    open my $fh, '<', $file or return 0;
    my $n = 0;
    while (<$fh>) {
        $n++ if /$re/;
    }
    return $n;
}

# Wait (bounded) until that log has at least $n such lines.
sub wait_count {
    my ($name, $re, $n, $wait) = @_;
    my $deadline = time + ($wait // $WAIT);
    while (count_lines($name, $re) < $n) {
        return 0 if time > $deadline;
        sleep 0.05;
    }
    return 1;
}

# True when the peer closes within $wait seconds; the time it took goes
# to $$took.  Bytes that arrive first are discarded.
sub closed_within {
    my ($s, $wait, $took) = @_;
    my $t0 = time;
    my $closed = CT::Raw::wait_closed($s, $wait);
    $$took = time - $t0 if $took;
    return $closed;
}

# No child of the server died of a signal since $mark.
sub no_crash {
    my ($mark, $file) = @_;
    my $text = log_since($mark, $file);
    return $text !~ /exit signal|AH00052|Segmentation|AH00060/;
}

# LoadModule lines: the system modules named (from t/conf/modules.conf,
# which apxs wrote) and this tree's module.
sub load_lines {
    my @want = @_;
    my $file = Apache::Test::vars('t_conf') . '/modules.conf';
    open my $fh, '<', $file or die "open $file: $!";
    my %line;
    while (<$fh>) {
        $line{$1} = $_ if /^LoadModule\s+(\w+)_module\s/;
    }
    my $text = '';
    $text .= $line{$_} // die "no LoadModule for $_ in $file" for @want;
    my $so = Apache::Test::vars('top_dir') . '/.libs/mod_connect_tunnel.so';
    return $text . qq{LoadModule connect_tunnel_module "$so"\n};
}

# The relay the suite runs with (`make test` runs it once per relay):
# a standalone server is configured the same way.
sub relay_mode {
    my $defines = Apache::Test::vars('defines') // '';
    return $defines =~ /\bCT_FILTER_PATH\b/ ? 'filter'
         : $defines =~ /\bCT_WORKER\b/      ? 'worker'
         : $defines =~ /\bCT_COPY\b/        ? 'copy'
         :                                     'reactor';
}

sub relay_lines {
    my $mode = relay_mode();
    return $mode eq 'filter' ? "ConnectTunnelHandoff Off\n"
                               . "ConnectTunnelZeroCopy Off\n"
         : $mode eq 'worker' ? "ConnectTunnelHandoff Off\n"
         : $mode eq 'copy'   ? "ConnectTunnelZeroCopy Off\n"
         :                     '';
}

# A private world-readable directory, removed at exit.
sub scratch_dir {
    my $dir = tempdir('ct-sec-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $dir;
    return $dir;
}

# A minimal httpd.conf in a fresh directory: mpm_event, authz_core,
# authz_host, proxy and this module, logs and PID file in the directory,
# the suite's relay (relay_lines), then $body (which holds the Listen
# lines and everything else).
sub standalone_config {
    my ($body, %o) = @_;
    my $dir = scratch_dir();
    my $user  = Apache::Test::vars('user');
    my $group = Apache::Test::vars('group');
    my $file = "$dir/httpd.conf";
    open my $fh, '>', $file or die "write $file: $!";
    print $fh load_lines(qw(mpm_event authz_core authz_host proxy)),
              qq{ServerRoot "$dir"\n},
              qq{ServerName localhost\n},
              qq{ErrorLog "$dir/error_log"\n},
              qq{LogLevel debug\n},
              qq{PidFile "$dir/httpd.pid"\n},
              qq{DefaultRuntimeDir "$dir"\n},
              qq{User $user\nGroup $group\n},
              $o{mpm} // (qq{StartServers 1\nServerLimit 1\n}
                          . qq{ThreadsPerChild 16\nMaxRequestWorkers 16\n}
                          . qq{MinSpareThreads 1\nMaxSpareThreads 16\n}),
              relay_lines(),
              $body, "\n";
    close $fh or die "write $file: $!";
    return ($dir, $file);
}

# "httpd -t" on a minimal config plus $body: (exit status, output).
sub config_test {
    my ($body) = @_;
    my ($dir, $conf) = standalone_config($body);
    my $httpd = Apache::Test::vars('httpd');
    my $out = `'$httpd' -t -d '$dir' -f '$conf' 2>&1`;
    return ($? >> 8, $out);
}

# Start a standalone httpd ("-k start") on $body, which must Listen on
# 127.0.0.1:$port; waits until the port accepts.  Returns a hash with
# the directory, the error log and the PID.  $o{mpm}: MPM settings in
# place of the default one child of 16 threads.
sub start_httpd {
    my ($body, $port, %o) = @_;
    my ($dir, $conf) = standalone_config($body, %o);
    my $httpd = Apache::Test::vars('httpd');
    my $pidfile = "$dir/httpd.pid";
    my $out = `'$httpd' -d '$dir' -f '$conf' -k start 2>&1`;
    die "standalone httpd did not start: $out" if $?;
    my $deadline = time + $WAIT;
    my $pid;
    while (time < $deadline) {
        if (!$pid && open my $fh, '<', $pidfile) {
            ($pid) = (<$fh> // '') =~ /(\d+)/;
            $httpd_pids{$pid} = $pidfile if $pid;
        }
        if ($pid && IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                        PeerPort => $port, Timeout => 1)) {
            return { dir => $dir, pid => $pid,
                     error_log => "$dir/error_log" };
        }
        sleep 0.1;
    }
    stop_httpd({ pid => $pid }) if $pid;
    die "standalone httpd did not listen on $port within $WAIT s";
}

# Stop a standalone httpd by its own PID; true when it is gone in time.
sub stop_httpd {
    my $srv = shift;
    my $pid = $srv->{pid} or return 1;
    return 1 unless delete $httpd_pids{$pid};
    kill 'TERM', $pid;
    my $deadline = time + $WAIT;
    while (time < $deadline) {
        waitpid($pid, WNOHANG);
        return 1 unless kill 0, $pid;
        sleep 0.1;
    }
    kill 'KILL', $pid;
    return 0;
}

END {
    my $rc = $?;
    stop_httpd({ pid => $_ }) for keys %httpd_pids;
    $? = $rc;
}

# Whether unshare(1), ip(8) and mount(8) are there to build a namespace.
sub have_netns_tools {
    for my $tool (qw(unshare ip mount)) {
        my $found = grep { -x "$_/$tool" } split(/:/, $ENV{PATH}),
                                          qw(/usr/bin /usr/sbin /bin /sbin);
        return "$tool not found" unless $found;
    }
    return "not root" if $> != 0;
    return '';
}

# Run the calling test file again inside new network and mount
# namespaces: only loopback exists there (brought up here), so nothing
# can leave the machine, and /etc/hosts and /etc/resolv.conf may be
# replaced by the texts given as hosts and resolv.conf, for that process
# alone.  Returns in the namespace; never returns in the
# caller, which exits with the inner run's status.  Returns a reason
# string when namespaces cannot be made (the caller should skip).
sub in_netns {
    my (%o) = @_;
    if ($ENV{CT_SEC_IN_NETNS}) {
        system('ip', 'link', 'set', 'lo', 'up') == 0
            or die "ip link set lo up failed";
        for (@{ $o{addresses} || [] }) {
            my ($addr, @flags) = split ' ';
            system('ip', 'addr', 'add', $addr, 'dev', 'lo', @flags) == 0
                or die "ip addr add $_ failed";
        }
        for my $file (qw(hosts resolv.conf)) {
            next unless defined $o{$file};
            my $dir = scratch_dir();
            open my $fh, '>', "$dir/$file" or die "write $file: $!";
            print $fh $o{$file};
            close $fh;
            chmod 0644, "$dir/$file";
            system('mount', '--bind', "$dir/$file", "/etc/$file") == 0
                or die "mount --bind $file failed";
        }
        return '';
    }
    my $why = have_netns_tools();
    return $why if $why;
    # Can a namespace be made here at all (containers may forbid it)?
    if (system('unshare --net --mount true >/dev/null 2>&1') != 0) {
        return 'unshare --net --mount is not permitted here';
    }
    local $ENV{CT_SEC_IN_NETNS} = 1;
    my @inc = map { "-I$_" } grep { !ref } @INC;
    system('unshare', '--net', '--mount', $^X, @inc, $0, @ARGV);
    exit($? == -1 ? 255 : $? & 127 ? 128 + ($? & 127) : $? >> 8);
}

1;
