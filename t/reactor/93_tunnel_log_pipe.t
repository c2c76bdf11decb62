# ConnectTunnelLog as a piped-log program, and a ConnectTunnelLog file
# that cannot be opened, on standalone servers this test starts (the
# directive is server-wide).  The manual: a value starting with | starts a
# piped-log program as CustomLog does ("|$command" through the shell, as
# httpd 2.4 reads it), which receives one record per
# finished tunnel, from workers and reactors alike:
#   [date] client=... target=host:port address=... mode=... end=...
#   up=N down=N duration_ms=N first_byte_ms=N|-
# refused requests are not written; and when the file cannot be opened,
# httpd does not start (CT00009).  Run in every relay mode: mode= is the
# run's relay.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Socket::INET;
use CT::Server qw(suite_mode wait_until);
use CT::Origin qw(accept_within listener);
use CT::Client qw(exchange read_head);

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 120;

my $want_mode = suite_mode() eq 'reactor' ? 'reactor' : 'worker';

# Tunnels to open, each with its own byte counts so that its record can
# be told apart.
my @tunnels = (
    { desc => 'tunnel with bytes both ways', up => 11, down => 22 },
    { desc => 'tunnel with a larger upload', up => 100_003, down => 7 },
    { desc => 'tunnel that moves nothing', up => 0, down => 0 },
);

# Records are read as hashes of their fields.
my $record_re = join '',
    '^\[\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\] ',
    'client=\S+ target=\S+ address=\S+ mode=\S+ end=\S+ ',
    'up=\d+ down=\d+ duration_ms=\d+ first_byte_ms=(?:\d+|-)$';
$record_re = qr/$record_re/;

plan tests => 3 + 7 * @tunnels + 3;

my $httpd = CT::Server->start(
    conf => qq{ConnectTunnelLog "|\$/bin/cat >> \@DIR\@/pipe_log"\n});
my $pipe_log = $httpd->file('pipe_log');
my $origin = listener();
my $target = '127.0.0.1:' . $origin->sockport;

sub read_records {
    open my $fh, '<', $pipe_log or return ();
    return map { chomp; $_ } <$fh>;
}

for my $t (@tunnels) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $httpd->port, Timeout => 10)
        or die "connect: $!";
    $s->autoflush(1);
    print $s "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";
    my $o = accept_within($origin);
    my ($status) = read_head($s);
    my ($got_up, $got_down) = ('', '');
    ($got_up, $got_down) = exchange($s, $o, 'u' x $t->{up}, 'd' x $t->{down})
        if $o && ($status // 0) == 200;
    $t->{ok} = length($got_up) == $t->{up} && length($got_down) == $t->{down};
    close $s;
    close $o if $o;
}

# A refused request (a signed port is a 400): never a record.
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $httpd->port, Timeout => 10)
        or die "connect: $!";
    print $s "CONNECT 127.0.0.1:+443 HTTP/1.1\r\nHost: x\r\n\r\n";
    my ($status) = read_head($s);
    is($status // '', 400, 'a refused request gets its 400');
}

my @recs = @{ wait_until(sub {
    my @r = read_records();
    return @r >= @tunnels ? \@r : undef;
}, 10) // [ read_records() ] };
# Give a stray extra record (the refused request's) time to show.
sleep 1;
@recs = read_records();
is(scalar @recs, scalar @tunnels,
   'one record per finished tunnel, none for the refused request');
ok(!-s $httpd->file('tunnels_log'),
   'the records went to the program, not to an earlier file setting');

for my $t (@tunnels) {
    my ($line) = grep { /\bup=$t->{up} down=$t->{down} / } @recs;
    $line //= '';
    my %f = $line =~ /(\w+)=(\S+)/g;
    ok($t->{ok}, "$t->{desc}: the bytes went through");
    like($line, $record_re, "$t->{desc}: a record in the documented form");
    is($f{client} // '', '127.0.0.1', "$t->{desc}: client=");
    is($f{target} // '', $target, "$t->{desc}: target=");
    is($f{address} // '', '127.0.0.1', "$t->{desc}: address=");
    is($f{mode} // '', $want_mode, "$t->{desc}: mode=");
    is($f{end} // '', 'closed', "$t->{desc}: end=");
}
$httpd->stop;

# A file under a directory that does not exist: httpd does not start.
{
    my $dir = CT::Server::scratch_dir();
    my $bad = "$dir/no-such-dir/tunnel_log";
    my $port = CT::Server::free_port();
    my $conf = CT::Server::write_config($dir, CT::Server::minimal_conf($dir,
        "Listen 127.0.0.1:$port\nConnectTunnelLog \"$bad\"\n"));
    my $httpd_bin = Apache::Test::vars('httpd');
    # Bounded: a server that did start is stopped after 15 s (status 124).
    system("timeout 15 '$httpd_bin' -d '$dir' -f '$conf' -DFOREGROUND "
           . "> '$dir/stdout' 2>&1");
    my $rc = $? >> 8;
    my $text = '';
    for my $f ("$dir/stdout", "$dir/error_log") {
        open my $fh, '<', $f or next;
        local $/;
        $text .= <$fh> // '';
    }
    ok($rc != 0 && $rc != 124,
       "an unopenable ConnectTunnelLog file: httpd exits at start ($rc)");
    like($text, qr/CT00009: cannot open the tunnel log '\Q$bad\E'/,
         'the error names the file (CT00009)');
    ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                              Timeout => 1),
       'nothing listens on its port');
}
