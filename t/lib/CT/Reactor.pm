package CT::Reactor;
# Helpers for the reactor hand-off tests (t/reactor/): which relay the
# suite's run configured, an origin server that echoes and records what
# it received, CONNECT tunnels over raw sockets, readers for the logs the
# module writes, /proc figures of the test server's children, many short
# tunnels at once, and a standalone httpd for the tests that must stop or
# reconfigure a server.  Every wait is bounded; every process started
# here is stopped by its PID.
use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use Errno qw(EAGAIN EWOULDBLOCK EINTR EINPROGRESS);
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK);
use File::Temp ();
use IO::Poll qw(POLLIN POLLOUT POLLERR POLLHUP);
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Socket qw(SOL_SOCKET SO_ERROR);
use Time::HiRes qw(time sleep);
use Digest::SHA;
use Apache::Test ();
use CT::Raw qw(read_head);

our @EXPORT_OK = qw(suite_mode suite_zero_copy start_origin tunnel echo_ok read_to_eof
                    wait_until access_lines tunnel_records log_lines
                    children_of fd_count rss_kb churn free_port
                    status_auto http_get write_all mark_logs
                    holders test_cert exchange);

# Seconds any single wait may take before a test gives up.
our $WAIT = 10;

# The relay the suite's run configured: 'reactor' (the default, and
# -defines CT_COPY, whose tunnels are handed off too), 'worker' (-defines
# CT_WORKER) or 'filter' (-defines CT_FILTER_PATH).
sub suite_mode {
    my $defines = Apache::Test::config()->{vars}->{defines} // '';
    return 'worker' if $defines =~ /\bCT_WORKER\b/;
    return 'filter' if $defines =~ /\bCT_FILTER_PATH\b/;
    return 'reactor';
}

# Whether the run relays with splice(2) where it can: not in the
# CT_FILTER_PATH run, nor in the CT_COPY run (ConnectTunnelZeroCopy Off
# with hand-off kept, so the reactors copy through their own buffers).
sub suite_zero_copy {
    my $defines = Apache::Test::config()->{vars}->{defines} // '';
    return $defines =~ /\b(?:CT_COPY|CT_FILTER_PATH)\b/ ? 0 : 1;
}

# The test server's log directory.
sub t_logs { Apache::Test::config()->{vars}->{t_logs} }

# Poll $cond every 50 ms for up to $secs; its last value.
sub wait_until {
    my ($cond, $secs) = @_;
    my $deadline = time + ($secs // $WAIT);
    while (1) {
        my $v = $cond->();
        return $v if $v || time >= $deadline;
        sleep 0.05;
    }
}

sub nonblocking {
    my $fh = shift;
    my $flags = fcntl($fh, F_GETFL, 0) or die "fcntl: $!";
    fcntl($fh, F_SETFL, $flags | O_NONBLOCK) or die "fcntl: $!";
}

############################################################################
# The origin: a forked process with listeners of three kinds.
#   echo: echoes every byte; at the client's end of stream it shuts down
#         its own write side once the echo is out, then closes.
#   bye:  echoes; at end of stream it answers "bye\n" and closes.
#   shut: says "hello\n" and shuts down its write side at once, then
#         only reads until end of stream.
# Each connection that ends leaves one line in the record file:
#   peer=PORT mode=KIND bytes=N sha256=HEX end=eof|error
# PORT is the proxy's source port of that connection.

sub start_origin {
    my %opt = @_;
    my $dir = File::Temp::tempdir('ct-origin-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);
    my $record = "$dir/record";
    open my $touch, '>', $record or die "$record: $!";
    close $touch;
    my %listen;
    for my $kind (qw(echo bye shut)) {
        $listen{$kind} = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1024,
            ReuseAddr => 1, Proto => 'tcp')
            or die "origin listen: $!";
    }
    my %ports = map { $_ => $listen{$_}->sockport } keys %listen;
    my $parent = $$;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        origin_main(\%listen, $record, $parent);
        POSIX::_exit(0);
    }
    close $_ for values %listen;
    return bless { pid => $pid, port => \%ports, record => $record,
                   dir => $dir }, 'CT::Reactor::Origin';
}

sub origin_main {
    my ($listen, $record, $parent) = @_;
    # Never run the test's END blocks in this process.
    $SIG{TERM} = $SIG{INT} = sub { POSIX::_exit(0) };
    $SIG{PIPE} = 'IGNORE';
    open my $rec, '>>', $record or POSIX::_exit(1);
    $rec->autoflush(1);
    my (%conn, %kind_of);
    for my $kind (keys %$listen) {
        nonblocking($listen->{$kind});
        $kind_of{fileno $listen->{$kind}} = $kind;
    }
    my $started = time;
    my $finish = sub {
        my ($c, $how) = @_;
        print $rec sprintf "peer=%d mode=%s bytes=%d sha256=%s end=%s\n",
            $c->{peer}, $c->{kind}, $c->{bytes}, $c->{sha}->hexdigest,
            $how;
        delete $conn{fileno $c->{sock}};
        close $c->{sock};
    };
    while (1) {
        # Bounded: gone with the test, and never older than 15 minutes.
        POSIX::_exit(0) if getppid() != $parent || time - $started > 900;
        my $poll = IO::Poll->new;
        $poll->mask($listen->{$_} => POLLIN) for keys %$listen;
        for my $c (values %conn) {
            my $m = 0;
            $m |= POLLIN if !$c->{eof} && length $c->{out} < (4 << 20);
            $m |= POLLOUT if length $c->{out};
            $poll->mask($c->{sock} => $m) if $m;
        }
        my $n = $poll->poll(1);
        next unless $n && $n > 0;
        for my $l (values %$listen) {
            next unless $poll->events($l);
            while (my $s = $l->accept) {
                nonblocking($s);
                my $kind = $kind_of{fileno $l};
                my $c = { sock => $s, kind => $kind, out => '',
                          bytes => 0, sha => Digest::SHA->new(256),
                          eof => 0, shut => 0, peer => $s->peerport };
                if ($kind eq 'shut') {
                    $c->{out} = "hello\n";
                    $c->{shut_after} = 1;
                }
                $conn{fileno $s} = $c;
            }
        }
        for my $c (values %conn) {
            my $s = $c->{sock};
            my $ev = $poll->events($s) or next;
            if ($ev & (POLLIN | POLLHUP | POLLERR) && !$c->{eof}) {
                my $r = sysread($s, my $buf, 65536);
                if (!defined $r) {
                    next if $! == EAGAIN || $! == EINTR;
                    $finish->($c, 'error');
                    next;
                }
                if ($r == 0) {
                    $c->{eof} = 1;
                    if ($c->{kind} eq 'echo') {
                        $c->{shut_after} = 1;
                    }
                    elsif ($c->{kind} eq 'bye') {
                        $c->{out} .= "bye\n";
                    }
                }
                else {
                    $c->{bytes} += $r;
                    $c->{sha}->add($buf);
                    $c->{out} .= $buf unless $c->{kind} eq 'shut';
                }
            }
            if (length $c->{out} && $ev & (POLLOUT | POLLERR | POLLHUP)) {
                my $w = syswrite($s, $c->{out});
                if (!defined $w) {
                    next if $! == EAGAIN || $! == EINTR;
                    $finish->($c, 'error');
                    next;
                }
                substr($c->{out}, 0, $w, '');
            }
            if (!length $c->{out}) {
                if ($c->{shut_after} && !$c->{shut}) {
                    shutdown($s, 1);
                    $c->{shut} = 1;
                }
                $finish->($c, 'eof') if $c->{eof};
            }
        }
    }
}

package CT::Reactor::Origin;
use Time::HiRes qw(sleep);

sub port { $_[0]->{port}->{ $_[1] // 'echo' } }

# Records of connections that ended, optionally only those of one kind.
sub records {
    my ($self, $kind) = @_;
    open my $fh, '<', $self->{record} or return ();
    my @r;
    while (my $line = <$fh>) {
        my %f = $line =~ /(\w+)=(\S+)/g;
        push @r, \%f if !$kind || $f{mode} eq $kind;
    }
    return @r;
}

sub stop {
    my $self = shift;
    return unless $self->{pid};
    kill 'TERM', $self->{pid};
    for (1 .. 100) {
        last if waitpid($self->{pid}, POSIX::WNOHANG()) != 0;
        sleep 0.05;
    }
    if (kill 0, $self->{pid}) {
        kill 'KILL', $self->{pid};
        waitpid($self->{pid}, 0);
    }
    delete $self->{pid};
}

sub DESTROY { $_[0]->stop if $_[0]->{pid} && $$ != $_[0]->{pid} }

package CT::Reactor;

############################################################################
# Clients.

# Write all of $data (blocking socket); false on error.
sub write_all {
    my ($s, $data) = @_;
    my $off = 0;
    while ($off < length $data) {
        my $w = syswrite($s, $data, length($data) - $off, $off);
        return 0 unless defined $w;
        $off += $w;
    }
    return 1;
}

# Open a tunnel through the proxy on 127.0.0.1:$port to $target, with
# $early sent in the same write as the CONNECT.  Returns the socket, the
# status and the bytes read past the reply head (or an empty list).
sub tunnel {
    my ($port, $target, %opt) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port, Proto => 'tcp',
                                  Timeout => $WAIT)
        or return;
    $s->autoflush(1);
    write_all($s, "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n"
                  . ($opt{early} // ''))
        or return;
    my ($status, $h, $head, $rest) = read_head($s, $opt{wait});
    return unless defined $status;
    return ($s, $status, $rest // '');
}

# Send $data and read the same number of bytes back: true when they are
# the same bytes.
sub echo_ok {
    my ($s, $data, $wait) = @_;
    write_all($s, $data) or return 0;
    my $got = CT::Raw::read_bytes($s, length $data, $wait);
    return $got eq $data;
}

# Read until end of stream or reset: (bytes, 1 if it ended, 0 on timeout).
sub read_to_eof {
    my ($s, $wait) = @_;
    my $sel = IO::Select->new($s);
    my $deadline = time + ($wait // $WAIT);
    my $buf = '';
    while (1) {
        my $left = $deadline - time;
        return ($buf, 0) if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($s, $buf, 65536, length $buf);
        return ($buf, 1) unless $n;
    }
}

############################################################################
# Logs.

# Where each log ended when the test called mark_logs(): readers skip
# what earlier tests and runs wrote (the suite's logs are kept).
my %from;

# Logs other than these three can be named.
sub mark_logs {
    for my $name (qw(error_log tunnels_log reactor_access_log), @_) {
        my $file = t_logs() . "/$name";
        $from{$file} = -s $file // 0;
    }
}

sub read_lines {
    my $file = shift;
    open my $fh, '<', $file or return ();
    seek $fh, $from{$file}, 0 if $from{$file};
    return <$fh>;
}

# Lines of the reactor vhosts' access log (t/logs/reactor_access_log)
# for the client port $cport, as hashes of their fields.
sub access_lines {
    my ($cport, $file) = @_;
    $file //= t_logs() . '/reactor_access_log';
    my @r;
    for (read_lines($file)) {
        my %f = /(\w+)=(\S*)/g;
        next unless defined $f{cport} && $f{cport} eq $cport;
        ($f{request}) = /"([^"]*)"/;
        push @r, \%f;
    }
    return @r;
}

# End-of-tunnel records (ConnectTunnelLog) for target $target.
sub tunnel_records {
    my ($target, $file) = @_;
    $file //= t_logs() . '/tunnels_log';
    my @r;
    for (read_lines($file)) {
        my %f = /(\w+)=(\S+)/g;
        push @r, \%f if defined $f{target} && $f{target} eq $target;
    }
    return @r;
}

# Lines of a log (default: the test server's error_log) matching $re.
sub log_lines {
    my ($re, $file) = @_;
    $file //= t_logs() . '/error_log';
    return grep { /$re/ } read_lines($file);
}

############################################################################
# Processes.

# PIDs whose parent is $ppid.
sub children_of {
    my $ppid = shift;
    my @kids;
    opendir my $d, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $d) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my $stat = <$fh> // next;
        my ($pp) = $stat =~ /\)\s+\S+\s+(\d+)/ or next;
        push @kids, $pid if $pp == $ppid;
    }
    return sort { $a <=> $b } @kids;
}

sub fd_count {
    my $pid = shift;
    opendir my $d, "/proc/$pid/fd" or return;
    return scalar grep { /^\d+$/ } readdir $d;
}

sub rss_kb {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/status" or return;
    while (<$fh>) {
        return $1 if /^VmRSS:\s+(\d+)/;
    }
    return;
}

# PIDs among @pids holding a TCP socket connected to 127.0.0.1:$port
# (found through /proc/net/tcp and the processes' descriptors).
sub holders {
    my ($port, @pids) = @_;
    my %inode;
    my $remote = sprintf '0100007F:%04X', $port;
    open my $fh, '<', '/proc/net/tcp' or return ();
    while (<$fh>) {
        my @f = split;
        $inode{ $f[9] } = 1 if ($f[2] // '') eq $remote && $f[9];
    }
    my @held;
    for my $pid (@pids) {
        opendir my $d, "/proc/$pid/fd" or next;
        for my $fd (readdir $d) {
            my $link = readlink "/proc/$pid/fd/$fd" // next;
            if ($link =~ /^socket:\[(\d+)\]$/ && $inode{$1}) {
                push @held, $pid;
                last;
            }
        }
    }
    return @held;
}

# A self-signed certificate for CN=localhost, made for one test: the
# directory holding cert.pem and key.pem (readable by the server's user),
# removed when the test ends.  Dies when openssl fails.
sub test_cert {
    my $openssl = (grep { -x "$_/openssl" } split /:/, $ENV{PATH})[0]
        or die 'test_cert: no openssl program';
    my $dir = File::Temp::tempdir('ct-cert-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);
    system("$openssl/openssl req -x509 -newkey ec -pkeyopt "
           . "ec_paramgen_curve:prime256v1 -nodes -days 2 "
           . "-subj /CN=localhost -addext subjectAltName=DNS:localhost "
           . "-keyout $dir/key.pem -out $dir/cert.pem 2>/dev/null") == 0
        or die 'test_cert: openssl req failed';
    chmod 0644, "$dir/key.pem";
    return $dir;
}

# A port nothing listens on right now.
sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1, ReuseAddr => 1)
        or die "free_port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

############################################################################
# Many short tunnels: $count tunnels through 127.0.0.1:$port to $target,
# at most $window at once.  Each connects, sends a CONNECT, reads the 200,
# sends a ping, reads the echo, half-closes and reads to the end.  Returns
# (tunnels that did all of that, tunnels that failed).  Stops after $secs.

sub churn {
    my (%o) = @_;
    my ($port, $target, $count) = @o{qw(port target count)};
    my $window = $o{window} // 200;
    my $deadline = time + ($o{secs} // 60);
    my $req = "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";
    my $ping = "ping\n";
    my $addr = Socket::pack_sockaddr_in($port, Socket::inet_aton('127.0.0.1'));
    my ($started, $ok, $bad) = (0, 0, 0);
    my %c;    # fileno => state
    my $fail = sub {
        my $st = shift;
        delete $c{fileno $st->{s}};
        close $st->{s};
        $bad++;
    };
    while (($started < $count || %c) && time < $deadline) {
        while ($started < $count && keys %c < $window) {
            socket(my $s, Socket::PF_INET(), Socket::SOCK_STREAM(), 0)
                or die "socket: $!";
            nonblocking($s);
            if (!connect($s, $addr) && $! != EINPROGRESS) {
                $bad++;
                $started++;
                next;
            }
            $c{fileno $s} = { s => $s, phase => 'connect', in => '',
                              out => $req };
            $started++;
        }
        my $poll = IO::Poll->new;
        for my $st (values %c) {
            $poll->mask($st->{s} => length $st->{out} ? POLLOUT : POLLIN);
        }
        $poll->poll(0.5);
        for my $st (values %c) {
            my $ev = $poll->events($st->{s}) or next;
            my $s = $st->{s};
            if ($st->{phase} eq 'connect') {
                my $err = unpack 'i', getsockopt($s, SOL_SOCKET, SO_ERROR);
                if ($err) {
                    $fail->($st);
                    next;
                }
                $st->{phase} = 'head';
            }
            if (length $st->{out}) {
                my $w = syswrite($s, $st->{out});
                if (!defined $w) {
                    $fail->($st) unless $! == EAGAIN || $! == EINTR;
                    next;
                }
                substr($st->{out}, 0, $w, '');
                next;
            }
            my $r = sysread($s, $st->{in}, 4096, length $st->{in});
            if (!defined $r) {
                $fail->($st) unless $! == EAGAIN || $! == EINTR;
                next;
            }
            if ($st->{phase} eq 'head') {
                if ($r == 0) {
                    $fail->($st);
                    next;
                }
                my $i = index $st->{in}, "\r\n\r\n";
                next if $i < 0;
                if ($st->{in} !~ m{^HTTP/1\.\d 200 }) {
                    $fail->($st);
                    next;
                }
                $st->{in} = substr $st->{in}, $i + 4;
                $st->{phase} = 'echo';
                $st->{out} = $ping;
            }
            elsif ($st->{phase} eq 'echo') {
                if ($r == 0) {
                    $fail->($st);
                    next;
                }
                next if length $st->{in} < length $ping;
                if ($st->{in} ne $ping) {
                    $fail->($st);
                    next;
                }
                shutdown($s, 1);
                $st->{phase} = 'eof';
            }
            elsif ($st->{phase} eq 'eof' && $r == 0) {
                delete $c{fileno $s};
                close $s;
                $ok++;
            }
        }
    }
    close $_->{s} for values %c;
    return ($ok, $bad + ($count - $ok - $bad));
}

# Both ends of one tunnel at once, with non-blocking I/O: $client sends
# $up and $origin sends $down, each half-closes when its part is out, and
# each reads the other's until end of stream (or $secs pass).  Returns
# (bytes the origin got, bytes the client got).
sub exchange {
    my ($client, $origin, $up, $down, $secs) = @_;
    my %out = (c => $up, o => $down);
    my %in = (c => '', o => '');
    my %eof = (c => 0, o => 0);
    my %sock = (c => $client, o => $origin);
    $_->blocking(0) for values %sock;
    my $deadline = time + ($secs // 30);
    while ((!$eof{c} || !$eof{o}) && time < $deadline) {
        my $r = IO::Select->new(map { $sock{$_} } grep { !$eof{$_} } 'c', 'o');
        my $w = IO::Select->new(map { $sock{$_} }
                                grep { defined $out{$_} } 'c', 'o');
        my ($cr, $cw) = IO::Select->select($r, $w, undef, 0.5);
        for my $k ('c', 'o') {
            my $s = $sock{$k};
            if ($cw && grep { $_ == $s } @$cw) {
                my $n = syswrite $s, $out{$k};
                substr($out{$k}, 0, $n, '') if $n;
                if (!length $out{$k}) {
                    shutdown $s, 1;
                    $out{$k} = undef;
                }
            }
            if ($cr && grep { $_ == $s } @$cr) {
                my $n = sysread $s, $in{$k}, 262144, length $in{$k};
                $eof{$k} = 1 if defined $n && $n == 0;
                $eof{$k} = 1 if !defined $n && !$!{EAGAIN} && !$!{EINTR};
            }
        }
    }
    $_->blocking(1) for values %sock;
    return ($in{o}, $in{c});
}

############################################################################
# HTTP/1.1 over raw sockets.

# GET $path from 127.0.0.1:$port: (status, body) or an empty list.
sub http_get {
    my ($port, $path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port, Timeout => $WAIT)
        or return;
    write_all($s, "GET $path HTTP/1.1\r\nHost: localhost\r\n"
                  . "Connection: close\r\n\r\n") or return;
    my ($status, $h, $head, $rest) = read_head($s);
    return unless defined $status;
    my ($body) = read_to_eof($s);
    return ($status, $rest . $body);
}

# mod_status's ?auto page as a hash (empty when it cannot be had).
sub status_auto {
    my $port = shift;
    my ($status, $body) = http_get($port, '/server-status?auto');
    return () unless defined $status && $status == 200;
    return map { /^([^:]+):\s*(.*?)\s*$/ ? ($1 => $2) : () }
           split /\n/, $body;
}

############################################################################
# A standalone httpd, for tests that stop the server or need settings of
# the whole server: built from the test server's binary and modules and
# the module built in this tree, in a temporary directory, run in the
# foreground as a child of the test so that its PID is known.

package CT::Reactor::Httpd;
use File::Temp ();
use POSIX ();
use Time::HiRes qw(time sleep);

# The LoadModule lines of the test server, by module name.
sub suite_modules {
    my $conf = Apache::Test::config()->{vars}->{t_conf} . '/modules.conf';
    my %m;
    open my $fh, '<', $conf or die "$conf: $!";
    while (<$fh>) {
        $m{$1} = $2 if /^\s*LoadModule\s+(\S+)\s+"?([^"\s]+)"?/;
    }
    return %m;
}

# Where the system's modules are (for ones the suite does not load).
sub libexecdir {
    my $apxs = Apache::Test::config()->{vars}->{apxs};
    my $dir = $apxs ? `$apxs -q LIBEXECDIR 2>/dev/null` : '';
    chomp $dir;
    return $dir;
}

# Start one.  %o: modules => [names beyond the base set], conf => text
# appended to the base configuration (which already has the forward
# proxy for loopback targets and logs in the directory), mode => the
# relay to configure ('reactor', 'copy', 'worker', 'filter'; default: the
# suite's), nofile => the server's descriptor limit (soft and hard),
# nofile_soft => a lower soft limit under that hard one, stock => 1 for
# stock mod_proxy_connect instead of this module (a reference for what
# stock does).
# Dies when it does not come up in 15 s.
sub start {
    my ($class, %o) = @_;
    my $vars = Apache::Test::config()->{vars};
    my $dir = File::Temp::tempdir('ct-httpd-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);
    chmod 0755, $dir;
    my $port = CT::Reactor::free_port();
    my %mod = suite_modules();
    my $libexec;
    my @load;
    for my $name ('mpm_event_module', 'authz_core_module',
                  'authz_host_module', 'proxy_module',
                  ($o{stock} ? ('proxy_connect_module') : ()),
                  map { "${_}_module" } @{ $o{modules} // [] }) {
        my $path = $mod{$name};
        if (!$path) {
            $libexec //= libexecdir();
            (my $short = $name) =~ s/_module$//;
            $path = "$libexec/mod_$short.so";
        }
        push @load, "LoadModule $name \"$path\"";
    }
    my $so = "$vars->{top_dir}/.libs/mod_connect_tunnel.so";
    my $mode = $o{mode} // CT::Reactor::suite_mode();
    my $relay = $o{stock} ? ''
              : $mode eq 'worker' ? "ConnectTunnelHandoff Off\n"
              : $mode eq 'filter' ? "ConnectTunnelHandoff Off\n"
                                    . "ConnectTunnelZeroCopy Off\n"
              : $mode eq 'copy' ? "ConnectTunnelZeroCopy Off\n"
              : !$o{mode} && !CT::Reactor::suite_zero_copy()
                                  ? "ConnectTunnelZeroCopy Off\n"
              : '';
    my $ours = $o{stock} ? '' : <<"EOC";
LoadModule connect_tunnel_module "$so"
ConnectTunnelLog "$dir/tunnels_log"
ConnectTunnelAllow loopback
EOC
    my $ports = $o{stock} ? '1-65535' : 'all';
    my $conf = join("\n", @load) . <<"EOC";

$ours
ServerRoot "$dir"
ServerName localhost
DefaultRuntimeDir "$dir"
PidFile "$dir/httpd.pid"
ErrorLog "$dir/error_log"
LogLevel info
Listen 127.0.0.1:$port
User $vars->{user}
Group $vars->{group}
Timeout 60
LogFormat "cport=%{remote}p mode=%{tunnel-mode}n end=%{tunnel-end}n up=%{tunnel-bytes-up}n down=%{tunnel-bytes-down}n status=%>s proto=%H \\"%r\\"" ct_reactor
CustomLog "$dir/access_log" ct_reactor
ProxyRequests On
AllowCONNECT $ports
<Proxy "*">
    Require all granted
</Proxy>
$relay
EOC
    $conf .= $o{conf} // '';
    $conf =~ s/\@DIR\@/$dir/g;
    $conf =~ s/\@PORT\@/$port/g;
    open my $fh, '>', "$dir/httpd.conf" or die "$dir/httpd.conf: $!";
    print $fh $conf;
    close $fh;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDOUT, '>>', "$dir/stdout";
        open STDERR, '>>', "$dir/stdout";
        my @cmd = ($vars->{httpd}, '-DFOREGROUND', '-d', $dir,
                   '-f', "$dir/httpd.conf");
        # A descriptor limit (soft and hard) for the server, if asked,
        # and a lower soft one.
        my $ulimit = $o{nofile} ? "ulimit -n $o{nofile}" : '';
        $ulimit .= " && ulimit -S -n $o{nofile_soft}" if $o{nofile_soft};
        unshift @cmd, 'sh', '-c', "$ulimit && exec \"\$@\"", 'sh'
            if $ulimit;
        {
            no warnings q(exec);
            exec @cmd;
        }
        POSIX::_exit(127);
    }
    my $self = bless { pid => $pid, port => $port, dir => $dir,
                       mode => $mode }, $class;
    my $up = CT::Reactor::wait_until(sub {
        return -1 if waitpid($pid, POSIX::WNOHANG()) == $pid;
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Timeout => 1);
        return $s ? 1 : 0;
    }, 15);
    if ($up != 1) {
        delete $self->{pid} if $up == -1;
        my $log = join '', CT::Reactor::read_lines("$dir/stdout"),
                          CT::Reactor::read_lines("$dir/error_log");
        $self->stop;
        die "standalone httpd did not start:\n$log";
    }
    return $self;
}

sub port { $_[0]->{port} }
sub pid  { $_[0]->{pid} }
sub file { "$_[0]->{dir}/$_[1]" }

sub signal {
    my ($self, $sig) = @_;
    return kill $sig, $self->{pid};
}

# Whether the parent process has exited (and reap it), within $secs.
sub wait_exit {
    my ($self, $secs) = @_;
    return 1 unless $self->{pid};
    my $pid = $self->{pid};
    my $gone = CT::Reactor::wait_until(
        sub { waitpid($pid, POSIX::WNOHANG()) == $pid }, $secs);
    delete $self->{pid} if $gone;
    return $gone ? 1 : 0;
}

# Stop it (SIGTERM, then SIGKILL after 10 s) and return whether it was
# still running.
sub stop {
    my $self = shift;
    return 0 unless $self->{pid};
    $self->signal('TERM');
    if (!$self->wait_exit(10)) {
        kill 'KILL', $self->{pid};
        waitpid($self->{pid}, 0);
        delete $self->{pid};
    }
    return 1;
}

sub DESTROY { $_[0]->stop if $_[0]->{pid} }

1;
