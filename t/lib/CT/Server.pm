package CT::Server;
# Test servers beyond the shared one Apache::Test runs: a throw-away
# httpd built from the test server's binary and modules and the module
# built in this tree, in a private directory, run in the foreground as a
# child of the test so that its PID is known and it can be stopped,
# signalled or reconfigured.  Two bases:
#   config => $body   a minimal server (MPM, authz, proxy, this module,
#                     logs in its directory); $body holds the Listen lines
#                     and everything else, port => the one to poll
#   (no config)       a forward proxy for loopback targets on a free port,
#                     with an access log (see proxy_conf)
# Also "httpd -t" on a minimal config, the relay the suite's run
# configured, /proc figures of server processes, and running a test in a
# private network namespace.  Every wait is bounded; only processes
# started here are signalled, by their PIDs.
use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use File::Path ();
use File::Temp ();
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use Apache::Test ();
use CT::Logs qw(read_lines log_file);

our @EXPORT_OK = qw(suite_mode suite_zero_copy relay_lines wait_until
                    free_port t_path conf_define scratch_dir minimal_conf
                    write_config config_test children_of httpd_children
                    fd_count rss_kb holders child_for_local_port test_cert
                    in_netns have_netns_tools);

# Seconds any single wait may take unless the caller says otherwise.
our $WAIT = 10;

# Seconds to wait for a server to start or stop.
our $START_WAIT = 15;

my %running;    # pid => the process that started it, to stop at exit

############################################################################
# The suite's run.

# The relay the suite's run configured: 'reactor' (the default, and
# -defines CT_COPY, whose tunnels are handed off too; 'copy' for it with
# copy => 1), 'worker' (-defines CT_WORKER) or 'filter' (-defines
# CT_FILTER_PATH).
sub suite_mode {
    my %o = @_;
    my $defines = Apache::Test::vars('defines') // '';
    return 'worker' if $defines =~ /\bCT_WORKER\b/;
    return 'filter' if $defines =~ /\bCT_FILTER_PATH\b/;
    return 'copy' if $o{copy} && $defines =~ /\bCT_COPY\b/;
    return 'reactor';
}

# Whether the run relays with splice(2) where it can: not in the
# CT_FILTER_PATH run, nor in the CT_COPY run (ConnectTunnelZeroCopy Off
# with hand-off kept, so the reactors copy through their own buffers).
sub suite_zero_copy {
    my $defines = Apache::Test::vars('defines') // '';
    return $defines =~ /\b(?:CT_COPY|CT_FILTER_PATH)\b/ ? 0 : 1;
}

# The directives that configure relay $mode (default: the suite's).
sub relay_lines {
    my $mode = shift // suite_mode(copy => 1);
    return $mode eq 'filter' ? "ConnectTunnelHandoff Off\n"
                               . "ConnectTunnelZeroCopy Off\n"
         : $mode eq 'worker' ? "ConnectTunnelHandoff Off\n"
         : $mode eq 'copy'   ? "ConnectTunnelZeroCopy Off\n"
         :                     '';
}

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

# A port nothing listens on right now.
sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1, ReuseAddr => 1)
        or die "free_port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub t_path {
    return join '/', Apache::Test::vars('t_dir'), @_;
}

# A port policy.conf.in reserved with "Define NAME @NextAvailablePort@".
sub conf_define {
    my $name = shift;
    my $file = t_path('conf', 'policy.conf');
    open my $fh, '<', $file or die "open $file: $!";
    while (<$fh>) {
        return $1 if /^\s*Define\s+\Q$name\E\s+(\S+)/;
    }
    die "no 'Define $name' in $file";
}

############################################################################
# Configurations.

# The LoadModule lines of the test server, by module name.
sub suite_modules {
    my $conf = Apache::Test::vars('t_conf') . '/modules.conf';
    my %m;
    open my $fh, '<', $conf or die "$conf: $!";
    while (<$fh>) {
        $m{$1} = $2 if /^\s*LoadModule\s+(\S+)\s+"?([^"\s]+)"?/;
    }
    return %m;
}

# Where the system's modules are (for ones the suite does not load).
sub libexecdir {
    my $apxs = Apache::Test::vars('apxs');
    my $dir = $apxs ? `$apxs -q LIBEXECDIR 2>/dev/null` : '';
    chomp $dir;
    return $dir;
}

# Why the HTTP/2 tests cannot run here, or nothing: they need mod_http2
# and Python's h2 library, which the client t/bin/h2-connect is built on.
sub h2_missing {
    my $libexec = libexecdir();
    return 'mod_http2 is not installed'
        unless $libexec && -e "$libexec/mod_http2.so";
    return 'python3-h2 is not installed'
        unless system('/usr/bin/python3', '-c', 'import h2') == 0;
    return;
}

# LoadModule lines for the named modules (short names: "proxy"), from
# the test server's list or else the system's directory.
sub load_lines {
    my %mod = suite_modules();
    my $libexec;
    my $text = '';
    for my $short (@_) {
        my $path = $mod{"${short}_module"};
        if (!$path) {
            $libexec //= libexecdir();
            $path = "$libexec/mod_$short.so";
        }
        $text .= "LoadModule ${short}_module \"$path\"\n";
    }
    return $text;
}

# This tree's module.
sub our_module {
    my $so = Apache::Test::vars('top_dir') . '/.libs/mod_connect_tunnel.so';
    return qq{LoadModule connect_tunnel_module "$so"\n};
}

# A private world-readable directory, removed at exit unless the test
# failed: then its server's configuration and logs stay for a look.
my @scratch;
sub scratch_dir {
    my $dir = File::Temp::tempdir('ct-httpd-XXXXXX', TMPDIR => 1);
    chmod 0755, $dir;
    push @scratch, [$dir, $$];
    return $dir;
}

# A minimal server's configuration, in $dir: mpm_event, authz_core,
# authz_host, proxy, the modules => [...] named, $o{before} (lines to
# load ahead of this module, e.g. another module to test the order),
# this module, logs and PID file in $dir, one child of threads => N
# (default 8) threads or the mpm => text given, with relay => 1 the
# suite's relay (relay_lines), then $body.
sub minimal_conf {
    my ($dir, $body, %o) = @_;
    my $n = $o{threads} // 8;
    return join '',
        load_lines(qw(mpm_event authz_core authz_host proxy),
                   @{ $o{modules} || [] }),
        $o{before} // '', our_module(),
        qq{ServerRoot "$dir"\n},
        qq{ServerName localhost\n},
        qq{ErrorLog "$dir/error_log"\n},
        qq{LogLevel debug\n},
        qq{PidFile "$dir/httpd.pid"\n},
        qq{DefaultRuntimeDir "$dir"\n},
        'User ', Apache::Test::vars('user'), "\n",
        'Group ', Apache::Test::vars('group'), "\n",
        $o{mpm} // "StartServers 1\nServerLimit 1\nThreadsPerChild $n\n"
                   . "MaxRequestWorkers $n\nMinSpareThreads 1\n"
                   . "MaxSpareThreads $n\n",
        $o{relay} ? relay_lines() : '',
        $body, "\n";
}

# A forward proxy's configuration, in $dir, listening on $port.  %o:
# modules => [names beyond the base set], conf => text appended, mode =>
# the relay ('reactor', 'copy', 'worker', 'filter'; default: the
# suite's), stock => 1 for stock mod_proxy_connect instead of this
# module (a reference for what stock does), access_log => 0 for no
# CustomLog of its own.
sub proxy_conf {
    my ($dir, $port, %o) = @_;
    my $load = load_lines(qw(mpm_event authz_core authz_host proxy),
                          ($o{stock} ? ('proxy_connect') : ()),
                          @{ $o{modules} // [] });
    my $relay = $o{stock} ? '' : relay_lines($o{mode});
    my $ours = $o{stock} ? '' : our_module() . <<"EOC";
ConnectTunnelLog "$dir/tunnels_log"
ConnectTunnelAllow loopback
EOC
    my $ports = $o{stock} ? '1-65535' : 'all';
    my $access_log = ($o{access_log} // 1)
                     ? qq{CustomLog "$dir/access_log" ct_reactor} : '';
    my $user = Apache::Test::vars('user');
    my $group = Apache::Test::vars('group');
    return $load . <<"EOC" . ($o{conf} // '');

$ours
ServerRoot "$dir"
ServerName localhost
DefaultRuntimeDir "$dir"
PidFile "$dir/httpd.pid"
ErrorLog "$dir/error_log"
LogLevel info
Listen 127.0.0.1:$port
User $user
Group $group
Timeout 60
LogFormat "cport=%{remote}p mode=%{tunnel-mode}n end=%{tunnel-end}n up=%{tunnel-bytes-up}n down=%{tunnel-bytes-down}n status=%>s proto=%H \\"%r\\"" ct_reactor
$access_log
ProxyRequests On
AllowCONNECT $ports
<Proxy "*">
    Require all granted
</Proxy>
$relay
EOC
}

# Write $text as $dir/httpd.conf; its path.
sub write_config {
    my ($dir, $text) = @_;
    my $file = "$dir/httpd.conf";
    open my $fh, '>', $file or die "write $file: $!";
    print $fh $text;
    close $fh or die "write $file: $!";
    return $file;
}

# Run "httpd -t" on a minimal config (minimal_conf's %o) with $body.
# Returns (exit status, everything httpd printed).
sub config_test {
    my ($body, %o) = @_;
    my $dir = scratch_dir();
    my $conf = write_config($dir, minimal_conf($dir, $body, %o));
    my $httpd = Apache::Test::vars('httpd');
    my $out = `'$httpd' -t -d '$dir' -f '$conf' 2>&1`;
    return ($? >> 8, $out);
}

############################################################################
# A running server.

# Start one (see the top of this file).  %o also: nofile => the server's
# descriptor limit (soft and hard), nofile_soft => a lower soft limit
# under that hard one.  "@DIR@" and "@PORT@" in the configuration stand
# for the server's directory and port.  Dies, with what the server
# printed, when it does not accept connections within $START_WAIT seconds.
sub start {
    my ($class, %o) = @_;
    my $dir = scratch_dir();
    my $port = $o{port} // free_port();
    my $conf = defined $o{config} ? minimal_conf($dir, $o{config}, %o)
                                  : proxy_conf($dir, $port, %o);
    $conf =~ s/\@DIR\@/$dir/g;
    $conf =~ s/\@PORT\@/$port/g;
    my $file = write_config($dir, $conf);
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/stdout";
        open STDERR, '>>', "$dir/stdout";
        my @cmd = (Apache::Test::vars('httpd'), '-DFOREGROUND', '-d', $dir,
                   '-f', $file);
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
    $running{$pid} = $$;
    my $self = bless { pid => $pid, port => $port, dir => $dir,
                       error_log => "$dir/error_log", owner => $$,
                       mode => $o{mode} // suite_mode() }, $class;
    my $up = wait_until(sub {
        return -1 if waitpid($pid, POSIX::WNOHANG()) == $pid;
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Timeout => 1);
        return $s ? 1 : 0;
    }, $START_WAIT);
    if ($up != 1) {
        if ($up == -1) {
            delete $running{$pid};
            delete $self->{pid};
        }
        my $log = $self->output;
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
    my $gone = wait_until(
        sub { waitpid($pid, POSIX::WNOHANG()) == $pid }, $secs);
    delete $self->{pid} if $gone;
    return $gone ? 1 : 0;
}

# Stop it: SIGTERM, then SIGKILL after $START_WAIT seconds.  True when it is
# not running any more without that SIGKILL.
sub stop {
    my $self = shift;
    my $pid = $self->{pid} or return 1;
    return 1 if $self->{owner} != $$;
    delete $running{$pid};
    $self->signal('TERM');
    return 1 if $self->wait_exit($START_WAIT);
    kill 'KILL', $pid;
    waitpid($pid, 0);
    delete $self->{pid};
    return 0;
}

sub DESTROY {
    local ($., $@, $!, $^E, $?);
    $_[0]->stop;
}

END {
    local ($., $@, $!, $^E, $?);
    for my $pid (grep { $running{$_} == $$ } keys %running) {
        bless({ pid => $pid, owner => $$ }, __PACKAGE__)->stop;
    }
    my @mine = map { $_->[0] } grep { $_->[1] == $$ } @scratch;
    # Only a Test::More test says whether it failed.
    if (!$INC{'Test/More.pm'} || Test::More->builder->is_passing) {
        File::Path::remove_tree(@mine) if @mine;
    }
    else {
        print STDERR "# a test failed: its servers' files are kept in $_\n"
            for @mine;
    }
}

# What the server printed and logged.
sub output {
    my $self = shift;
    my $text = '';
    for my $f ("$self->{dir}/stdout", "$self->{dir}/error_log") {
        open my $fh, '<', $f or next;
        local $/;
        $text .= <$fh> // '';
    }
    return $text;
}

sub error_log {
    my $self = shift;
    open my $fh, '<', "$self->{dir}/error_log" or return '';
    local $/;
    return <$fh> // '';
}

############################################################################
# Server processes.

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

# The PIDs whose parent is the shared test server's main process.
sub httpd_children {
    open my $fh, '<', log_file('httpd.pid') or return ();
    my ($master) = (<$fh> // '') =~ /(\d+)/;
    return $master ? children_of($master) : ();
}

sub fd_count {
    my $pid = shift;
    opendir my $d, "/proc/$pid/fd" or return;
    return scalar grep { /^\d+$/ } readdir $d;
}

# Resident set size of a process in KiB (undef if it is gone).
sub rss_kb {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/status" or return undef;
    while (<$fh>) {
        return $1 if /^VmRSS:\s+(\d+)/;
    }
    return undef;
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

# The httpd child holding the TCP socket whose local port is $port (the
# origin side of a tunnel: the port the origin saw as its peer's).
sub child_for_local_port {
    my $port = shift;
    my %inodes;
    for my $table ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $table or next;
        <$fh>;
        while (<$fh>) {
            my @f = split ' ';
            my ($lport) = $f[1] =~ /:([0-9A-F]{4})$/ or next;
            $inodes{ $f[9] } = 1 if hex($lport) == $port && $f[9];
        }
        close $fh;
    }
    return undef unless %inodes;
    for my $pid (httpd_children()) {
        opendir my $dh, "/proc/$pid/fd" or next;
        for my $fd (readdir $dh) {
            my $link = readlink "/proc/$pid/fd/$fd" // next;
            if ($link =~ /^socket:\[(\d+)\]$/ && $inodes{$1}) {
                closedir $dh;
                return $pid;
            }
        }
        closedir $dh;
    }
    return undef;
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

############################################################################
# A private network namespace.

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
