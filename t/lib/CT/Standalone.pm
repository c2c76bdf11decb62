package CT::Standalone;
# A second, throw-away httpd for what the shared test server cannot show:
# configuration errors (httpd -t on a small config) and main-server
# settings (AllowCONNECT in server context, ServerTokens) that would leak
# into every other test's virtual hosts.  It loads the module built in this
# tree and the system modules t/conf/modules.conf names (from apxs), listens
# on loopback only, and is stopped by its own PID.
use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Socket qw(PF_INET SOCK_STREAM pack_sockaddr_in unpack_sockaddr_in
              inet_aton);
use Time::HiRes qw(time sleep);
use Apache::Test ();

our @EXPORT_OK = qw(config_test free_port);

# Modules every standalone config loads, before the body.
our @BASE_MODULES = qw(mpm_event authz_core authz_host proxy);

# Seconds to wait for the server to start or stop.
our $WAIT = 15;

my %started;    # pid => 1 for servers still to stop

sub t_dir { Apache::Test::vars('t_dir') }

# LoadModule lines for the named system modules, then $before (lines to
# load ahead of this module, e.g. another module to test the order), then
# this tree's module.
sub load_lines {
    my ($before, @want) = @_;
    my $file = t_dir() . '/conf/modules.conf';
    open my $fh, '<', $file or die "open $file: $!";
    my %line;
    while (<$fh>) {
        $line{$1} = $_ if /^LoadModule\s+(\w+)_module\s/;
    }
    my $text = '';
    for (@want) {
        $text .= $line{$_} // die "no LoadModule for $_ in $file";
    }
    my $so = Apache::Test::vars('top_dir') . '/.libs/mod_connect_tunnel.so';
    $text .= $before // '';
    $text .= qq{LoadModule connect_tunnel_module "$so"\n};
    return $text;
}

# A private directory under t/tmp, removed at exit.
sub scratch_dir {
    my $base = t_dir() . '/tmp';
    mkdir $base unless -d $base;
    return tempdir('standalone-XXXXXX', DIR => $base, CLEANUP => 1);
}

# A configuration file: base modules, extra modules, $o{before}, this
# module, logs in $dir, body.
sub write_config {
    my ($dir, $body, %o) = @_;
    my $user  = Apache::Test::vars('user');
    my $group = Apache::Test::vars('group');
    my $file = "$dir/httpd.conf";
    open my $fh, '>', $file or die "write $file: $!";
    print $fh load_lines($o{before}, @BASE_MODULES,
                         @{ $o{modules} || [] }),
              qq{ServerRoot "$dir"\n},
              qq{ServerName localhost\n},
              qq{ErrorLog "$dir/error_log"\n},
              qq{LogLevel debug\n},
              qq{PidFile "$dir/httpd.pid"\n},
              qq{DefaultRuntimeDir "$dir"\n},
              qq{User $user\nGroup $group\n},
              qq{StartServers 1\nServerLimit 1\nThreadsPerChild 8\n},
              qq{MaxRequestWorkers 8\nMinSpareThreads 1\n},
              qq{MaxSpareThreads 8\n},
              $body, "\n";
    close $fh or die "write $file: $!";
    return $file;
}

# Run "httpd -t" on a config made of the base modules and $body.
# Returns (exit status, everything httpd printed).
sub config_test {
    my ($body, %o) = @_;
    my $dir = scratch_dir();
    my $conf = write_config($dir, $body, %o);
    my $httpd = Apache::Test::vars('httpd');
    my $out = `'$httpd' -t -d '$dir' -f '$conf' 2>&1`;
    return ($? >> 8, $out);
}

# A loopback port that was free a moment ago.
sub free_port {
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    bind($s, pack_sockaddr_in(0, inet_aton('127.0.0.1'))) or die "bind: $!";
    my ($port) = unpack_sockaddr_in(getsockname($s));
    close $s;
    return $port;
}

# Start a server in the foreground (a child of this test).  $body must
# hold its Listen lines; $port is one of them, polled until it accepts.
sub start {
    my ($class, $body, $port, %o) = @_;
    my $dir = scratch_dir();
    my $conf = write_config($dir, $body, %o);
    my $httpd = Apache::Test::vars('httpd');
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$dir/stdout";
        open STDERR, '>&', \*STDOUT;
        { exec $httpd, '-d', $dir, '-f', $conf, '-DFOREGROUND' };
        POSIX::_exit(127);
    }
    $started{$pid} = 1;
    my $self = bless { pid => $pid, dir => $dir, port => $port }, $class;
    my $deadline = time + $WAIT;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $started{$pid};
            die "standalone httpd exited at start:\n" . $self->output;
        }
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Timeout => 1);
        return $self if $s;
        sleep 0.1;
    }
    $self->stop;
    die "standalone httpd did not listen on $port within $WAIT s";
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

sub stop {
    my $self = shift;
    stop_pid($self->{pid});
}

sub stop_pid {
    my $pid = shift;
    return unless delete $started{$pid};
    kill 'TERM', $pid;
    my $deadline = time + $WAIT;
    while (time < $deadline) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.1;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

sub DESTROY {
    my $self = shift;
    local ($?, $!, $@);
    stop_pid($self->{pid}) if $self->{pid};
}

END {
    local ($?, $!, $@);
    stop_pid($_) for keys %started;
}

1;
