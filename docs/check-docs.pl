#!/usr/bin/perl
# Checks that docs/mod_connect_tunnel.html matches the code: every directive
# of the command table has a section (and every section a directive), every
# CT_LOGNO tag has a row with its level (and no row is left over), and every
# request note the module sets is listed with the values it can take (the
# names ct_end_name() gives, literals the code sets); each directive's
# Context row matches its command-table context (GLOBAL_ONLY included).
# Usage, from the top of the tree: perl docs/check-docs.pl
use strict;
use warnings;

my $html_file = 'docs/mod_connect_tunnel.html';
my @c_files = ('mod_connect_tunnel.c', glob('modules/*.c'));
my @errors;

sub slurp {
    my $file = shift;
    open my $fh, '<', $file or die "check-docs: cannot read $file: $!\n";
    local $/;
    return scalar <$fh>;
}

my $html = slurp($html_file);
my %code_text = map { $_ => slurp($_) } @c_files;

# Directives: AP_INIT_*("Name", func, data, CONTEXT, ...) against
# <h2 id="name">Name Directive</h2> and the Context row of its table.
my %directives;
my $entry = $code_text{'mod_connect_tunnel.c'};
while ($entry =~ /AP_INIT_\w+\(\s*"(\w+)"\s*,\s*(\w+)\s*,[^,]*,
                  \s*([A-Z_|\s]+?)\s*,/gx) {
    my ($name, $setter, $flags) = ($1, $2, $3);
    # A setter that insists on GLOBAL_ONLY narrows RSRC_CONF.
    my ($body) = $entry =~ /\n[^\n]*\b\Q$setter\E\([^)]*\)\s*\{(.*?)\n\}/s;
    my $global = defined $body && $body =~ /GLOBAL_ONLY/;
    my @ctx;
    push @ctx, 'server config' if $flags =~ /RSRC_CONF/;
    push @ctx, 'virtual host' if $flags =~ /RSRC_CONF/ && !$global;
    push @ctx, 'directory' if $flags =~ /ACCESS_CONF/;
    push @ctx, '.htaccess' if $flags =~ /\bOR_/;
    $directives{$name} = join ', ', @ctx;
}
my %documented;
while ($html =~ /<h2\ id="(\w+)">(\w+)\ Directive<\/h2>\s*
                 <table\ class="directive">(.*?)<\/table>/gsx) {
    my ($id, $name, $table) = ($1, $2, $3);
    push @errors, "section id '$id' does not match directive $name"
        if $id ne lc $name;
    $documented{$name} = 1;
    my ($ctx) = $table =~ /<th>Context:<\/th><td>(.*?)<\/td>/s;
    $ctx = defined $ctx ? join(' ', split ' ', $ctx) : '(none)';
    push @errors, "$name: context is '$directives{$name}' in the code, "
                  . "'$ctx' in $html_file"
        if exists $directives{$name} && $ctx ne $directives{$name};
}
for my $d (sort keys %directives) {
    push @errors, "directive $d has no section in $html_file"
        unless $documented{$d};
}
for my $d (sort keys %documented) {
    push @errors, "$html_file documents $d, which the command table lacks"
        unless $directives{$d};
}

# Log tags with their levels: APLOG_LEVEL, ..., CT_LOGNO(nnnnn).
my %level_name = (EMERG => 'emerg', ALERT => 'alert', CRIT => 'crit',
                  ERR => 'error', WARNING => 'warn', NOTICE => 'notice',
                  INFO => 'info', DEBUG => 'debug');
my %tags;
for my $file (@c_files) {
    my $text = $code_text{$file};
    while ($text =~ /APLOG_(EMERG|ALERT|CRIT|ERR|WARNING|NOTICE|INFO|DEBUG)
                     \b[^;]*?CT_LOGNO\((\d+)\)/gsx) {
        push @errors, "tag CT$2 is used twice (again in $file)"
            if exists $tags{$2};
        $tags{$2} = $level_name{$1};
    }
}
my %rows;
while ($html =~ /<tr><td><code>CT(\d+)<\/code><\/td><td>(\w+)<\/td>/g) {
    $rows{$1} = $2;
}
for my $t (sort keys %tags) {
    if (!exists $rows{$t}) {
        push @errors, "log tag CT$t has no row in $html_file";
    }
    elsif ($rows{$t} ne $tags{$t}) {
        push @errors, "log tag CT$t is $tags{$t} in the code, "
                      . "$rows{$t} in $html_file";
    }
}
for my $t (sort keys %rows) {
    push @errors, "$html_file lists CT$t, which the code does not log"
        unless exists $tags{$t};
}

# Request notes named in ct_report.h.
my $report_h = slurp('modules/ct_report.h');
my @notes = $report_h =~ /#define\s+CT_NOTE_\w+\s+"([^"]+)"/g;
for my $n (@notes) {
    push @errors, "request note $n is not described in $html_file"
        unless $html =~ /<tr><td><code>\Q$n\E<\/code><\/td>/;
}

# Values: every name ct_end_name() gives tunnel-end, and every literal a
# note is set to, must appear in that note's row.
my %note_of = $report_h =~ /#define\s+(CT_NOTE_\w+)\s+"([^"]+)"/g;
my %values;
# ct_end_name() may live in any source file; find its body wherever it is.
my $end_names = 0;
for my $file (@c_files) {
    my ($body) = $code_text{$file}
        =~ /\bct_end_name\s*\([^)]*\)\s*\{(.*?)\n\}/s;
    next unless defined $body;
    while ($body =~ /case\s+CT_END_(\w+):\s*return\s+"([^"]+)";/g) {
        $end_names++;
        $values{'tunnel-end'}{$2} = 1 unless $1 eq 'NONE';
    }
}
push @errors, "no ct_end_name() with CT_END_ cases found in the code"
    unless $end_names;
for my $file (@c_files) {
    while ($code_text{$file} =~ /\b(CT_NOTE_\w+)\s*,\s*"([^"]+)"/g) {
        $values{$note_of{$1}}{$2} = 1 if exists $note_of{$1};
    }
}
for my $n (sort keys %values) {
    my ($row) = $html =~ /<tr><td><code>\Q$n\E<\/code><\/td>(.*?)<\/tr>/s;
    for my $v (sort keys %{ $values{$n} }) {
        push @errors, "$n value '$v' is not described in $html_file"
            unless defined $row && $row =~ /<code>\Q$v\E<\/code>/;
    }
}

if (@errors) {
    print STDERR "check-docs: $_\n" for @errors;
    exit 1;
}
printf "check-docs: %d directives, %d log tags, %d request notes "
       . "documented\n", scalar(keys %directives), scalar(keys %tags),
       scalar(@notes);
exit 0;
