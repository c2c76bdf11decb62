# ConnectTunnelAddress (ct_notes_override: the value comes from the
# client's X-Dial header, a test knob).  The origin that answers is the
# override's, the notes keep the client's target and name the address
# dialled; what is dialled is what is checked: an override denied by a
# rule (127.0.0.9) or listed in ProxyBlock (127.0.0.10) is refused though
# the target is allowed; a value that is not an address is a 500 with a
# log line; an empty value dials the target.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use CT::Origin ();
use CT::Client qw(raw_connect read_bytes read_to_eof);
use CT::Logs qw(log_mark log_wait);

plan tests => 14;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 60;

my $real = CT::Origin->start('echo');
my $decoy = CT::Origin->start('echo');
my ($rp, $dp) = ($real->port, $decoy->port);

sub notes {
    my ($mark, $port) = @_;
    my $line = log_wait($mark, qr/"CONNECT 127\.0\.0\.1:$port /, 10,
                        log => 'notes_log', line => 1) // '';
    return { $line =~ / (\w+)=(\S+)/g };
}

# The target is the decoy; the override sends the tunnel to the real one.
for my $case (['host and port', "127.0.0.1:$rp", $rp],
              ['IPv6-mapped host and port', "[::ffff:127.0.0.1]:$rp", $rp]) {
    my ($name, $value, $want) = @$case;
    my $mark = log_mark('notes_log');
    my ($s, $status, $h, $head, $rest) =
        raw_connect('ct_notes_override', "127.0.0.1:$dp",
                    headers => "X-Dial: $value\r\n");
    is $status, 200, "$name: established";
    print $s 'ping';
    is $rest . read_bytes($s, 4 - length($rest // '')), 'ping',
        "$name: echoed";
    shutdown $s, 1;
    read_to_eof($s, 5);
    close $s;
    my $n = notes($mark, $dp);
    is "$n->{host}:$n->{port} -> $n->{addr}:$n->{aport}",
        "127.0.0.1:$dp -> 127.0.0.1:$want",
        "$name: the target stays, the override is dialled";
}
my $r = $real->wait_for(2, 'finished', 10);
ok $r, 'the overriding origin got both tunnels';
is $decoy->wait_for(1, 'accepted', 1), undef, 'the target was never dialled';

# What is dialled is checked.
for my $case (['denied by a rule', '127.0.0.9', 403],
              ['listed in ProxyBlock', '127.0.0.10', 403],
              ['not an address', 'no/such thing', 500]) {
    my ($name, $value, $want) = @$case;
    my ($s, $status) = raw_connect('ct_notes_override', "127.0.0.1:$dp",
                                   headers => "X-Dial: $value\r\n");
    is $status, $want, "override $name: $want";
    close $s if $s;
}
my $mark = log_mark('error_log');
my ($s, $status) = raw_connect('ct_notes_override', "127.0.0.1:$dp",
                               headers => "X-Dial: a\tb\r\n");
close $s if $s;
ok log_wait($mark, qr/CT00232: /, 5, log => 'error_log', line => 1),
    'a bad override is logged (CT00232)';

# No header: an empty value dials the target itself.
($s, $status) = raw_connect('ct_notes_override', "127.0.0.1:$dp");
is $status, 200, 'no override: the target is dialled';
close $s if $s;
ok $decoy->wait_for(1, 'accepted', 10), 'no override: the target answered';
$real->stop;
$decoy->stop;
