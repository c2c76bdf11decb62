package CT::Logs;
# Readers for the logs the test servers write: marks (where a log ends
# now) and what came after them, bounded waits for a line, the fields of
# the access log and of the end-of-tunnel records (ConnectTunnelLog),
# crash checks, and mod_status's ?auto page.  A log is named by a file
# name under t/logs (default: error_log) or by a path.
use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use Time::HiRes qw(time sleep);
use Apache::Test ();
use CT::Client qw(http_get);

our @EXPORT_OK = qw(t_logs log_file log_mark log_since log_lines_since
                    log_wait wait_tunnel_record mark_logs read_lines
                    access_lines tunnel_records log_lines count_lines
                    wait_count no_crash status_auto);

# Seconds any single wait may take unless the caller says otherwise.
our $WAIT = 10;

# The test server's log directory.
sub t_logs { Apache::Test::vars('t_logs') }

# The file of a log: a name under t/logs, or a path (with a "/").
sub log_file {
    my $log = shift // 'error_log';
    return $log =~ m{/} ? $log : t_logs() . "/$log";
}

# Where a log ends now: what is written later is "since" the mark.
sub log_mark { -s log_file($_[0]) // 0 }

# The text of a log written since $mark.
sub log_since {
    my ($mark, $log) = @_;
    open my $fh, '<', log_file($log) or return '';
    seek $fh, $mark, 0;
    local $/;
    return <$fh> // '';
}

# The whole lines of a log written since $mark (a line still being
# written is not a line yet).
sub log_lines_since {
    my ($log, $mark) = @_;
    open my $fh, '<', log_file($log) or return ();
    seek $fh, $mark, 0;
    local $/ = "\n";
    my @lines = <$fh>;
    close $fh;
    pop @lines if @lines && $lines[-1] !~ /\n\z/;
    return @lines;
}

# Wait up to $wait seconds (default 5) until what a log got since $mark
# matches $re.  Returns that text, or undef.  %o: log (which log), line
# => 1 to match whole lines one by one and return the first that
# matches; default => what to return when nothing matched in time
# (undef unless given).
sub log_wait {
    my ($mark, $re, $wait, %o) = @_;
    my $deadline = time + ($wait // 5);
    while (1) {
        if ($o{line}) {
            for (log_lines_since($o{log}, $mark)) {
                return $_ if $_ =~ $re;
            }
        }
        else {
            my $text = log_since($mark, $o{log});
            return $text if $text =~ $re;
        }
        return $o{default} if time >= $deadline;
        sleep 0.05;
    }
}

# The end-of-tunnel record (ConnectTunnelLog, t/logs/tunnels_log) of the
# tunnel to $target ("host:port" as in the CONNECT) written after $mark,
# waiting up to $wait seconds for it; a hash of its fields (client,
# target, address, mode, end, up, down, duration_ms), or undef.
sub wait_tunnel_record {
    my ($mark, $target, $wait) = @_;
    my $line = log_wait($mark, qr/ target=\Q$target\E /, $wait // $WAIT,
                        log => 'tunnels_log', line => 1) // return undef;
    my %rec = $line =~ / (\w+)=(\S+)/g;
    return \%rec;
}

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
# for the client port $cport, as hashes of their fields; with $since (a
# log_mark), only lines written after it: a client port comes round
# again, and an earlier connection's lines must not count.
sub access_lines {
    my ($cport, $file, $since) = @_;
    $file //= t_logs() . '/reactor_access_log';
    my @r;
    for (defined $since ? log_lines_since($file, $since)
                        : read_lines($file)) {
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
# Lines of a log (default: the test server's error_log) matching $re.
sub log_lines {
    my ($re, $file) = @_;
    $file //= t_logs() . '/error_log';
    return grep { /$re/ } read_lines($file);
}

# Lines of a log of the shared test server (a name under t/logs)
# matching $re.
sub count_lines {
    my ($name, $re) = @_;
    my $file = log_file($name);
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

# No child of the server died of a signal since $mark.
sub no_crash {
    my ($mark, $file) = @_;
    my $text = log_since($mark, $file);
    return $text !~ /exit signal|AH00052|Segmentation|AH00060/;
}

# mod_status's ?auto page as a hash (empty when it cannot be had).
sub status_auto {
    my $port = shift;
    my ($status, $body) = http_get($port, '/server-status?auto');
    return () unless defined $status && $status == 200;
    return map { /^([^:]+):\s*(.*?)\s*$/ ? ($1 => $2) : () }
           split /\n/, $body;
}

1;
