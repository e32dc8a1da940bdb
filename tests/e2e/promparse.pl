#!/usr/bin/perl
# A strict parser of the Prometheus text exposition format (version 0.0.4), for the
# tests: reads the text on stdin and prints one line per sample, "name{l="v",...} value"
# with the labels sorted, or exits 1 naming the first line that breaks a rule. Rules:
# HELP and TYPE once per family, TYPE before its samples, a family's samples together,
# metric and label names as the format allows, label values escaped (\\ \" \n only),
# values as Go's ParseFloat takes them, no series twice, counters named *_total and
# never negative, histograms with le buckets in increasing order, cumulative counts that
# never go down, a +Inf bucket equal to _count, and a _sum.
use strict;
use warnings;

my $name_re = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
my $label_re = qr/[a-zA-Z_][a-zA-Z0-9_]*/;
my $float_re = qr/[-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?|Inf|NaN)/;
my (%type, %help, %done, %seen, @out);
my ($family, $n) = ('', 0);
my %hist; # family -> series key (labels but le) -> {le => [..], count, sum}

sub fail { print STDERR "line $n: $_[0]\n"; exit 1; }

sub family_of {
	my ($name) = @_;
	for my $suffix ('_bucket', '_sum', '_count') {
		if ($name =~ /^(.*)\Q$suffix\E$/ && ($type{$1} // '') eq 'histogram') {
			return ($1, $suffix);
		}
	}
	return ($name, '');
}

while (my $line = <STDIN>) {
	$n++;
	fail('no newline at the end') unless $line =~ s/\n\z//;
	fail('empty line') if $line eq '';
	if ($line =~ /^#/) {
		if ($line =~ /^# (HELP|TYPE) ($name_re) (.*)$/) {
			my ($kw, $fam, $rest) = ($1, $2, $3);
			if ($kw eq 'HELP') {
				fail("second HELP for $fam") if $help{$fam}++;
				fail("bad escape in HELP") if $rest =~ /\\(?![\\n])/;
			} else {
				fail("second TYPE for $fam") if exists $type{$fam};
				fail("unknown type '$rest'") unless $rest =~ /^(counter|gauge|histogram|summary|untyped)$/;
				fail("TYPE for $fam after its samples") if $done{$fam} || $fam eq $family;
				fail("counter $fam is not named *_total") if $rest eq 'counter' && $fam !~ /_total$/;
				$type{$fam} = $rest;
			}
			next;
		}
		fail("a comment that is neither HELP nor TYPE: '$line'") if $line =~ /^# (HELP|TYPE)/;
		next;
	}
	$line =~ /^($name_re)(\{(.*)\})? ($float_re)( -?[0-9]+)?$/ or fail("not a sample: '$line'");
	my ($name, $labels, $value) = ($1, $3 // '', $4);
	my ($fam, $suffix) = family_of($name);
	fail("sample of $fam before its TYPE") unless exists $type{$fam};
	if ($fam ne $family) {
		fail("samples of $fam are not together") if $done{$fam};
		$done{$family} = 1 if $family ne '';
		$family = $fam;
	}
	my %l;
	my $rest = $labels;
	while ($rest ne '') {
		$rest =~ s/^($label_re)="((?:[^"\\\n]|\\[\\"n])*)"// or fail("bad label in '$labels'");
		my ($k, $v) = ($1, $2);
		fail("label $k twice") if exists $l{$k};
		fail("reserved label name $k") if $k =~ /^__/;
		$l{$k} = $v;
		last if $rest eq '';
		$rest =~ s/^,// or fail("labels not separated by commas in '$labels'");
	}
	my $key = join(',', map { "$_=\"$l{$_}\"" } sort keys %l);
	fail("series $name\{$key} twice") if $seen{"$name\{$key}"}++;
	fail("counter $name is negative") if $type{$fam} eq 'counter' && $value =~ /^-/;
	if ($type{$fam} eq 'histogram') {
		fail("histogram $fam: a sample $name") if $suffix eq '';
		my %nole = %l;
		my $le = delete $nole{le};
		my $sk = join(',', map { "$_=\"$nole{$_}\"" } sort keys %nole);
		my $h = $hist{$fam}{$sk} //= {le => [], count => undef, sum => undef};
		if ($suffix eq '_bucket') {
			fail("bucket without le") unless defined $le;
			fail("bucket after _sum or _count") if defined $h->{count} || defined $h->{sum};
			my $bound = $le eq '+Inf' ? 9**9**9 : $le;
			fail("le '$le' is not a number") unless $le =~ /^$float_re$/;
			if (@{$h->{le}}) {
				my ($pb, $pv) = @{$h->{le}[-1]};
				fail("le $le not above the one before") unless $bound > $pb;
				fail("bucket count $value below the one before") if $value < $pv;
			}
			push @{$h->{le}}, [$bound, $value];
		} else {
			fail("le on $name") if defined $le;
			$h->{$suffix eq '_sum' ? 'sum' : 'count'} = $value;
		}
	}
	push @out, "$name\{$key} $value";
}
for my $fam (sort keys %hist) {
	for my $sk (sort keys %{$hist{$fam}}) {
		my $h = $hist{$fam}{$sk};
		my $last = $h->{le}[-1];
		$n = 'end';
		fail("histogram $fam\{$sk}: no +Inf bucket") unless $last && $last->[0] == 9**9**9;
		fail("histogram $fam\{$sk}: no _count") unless defined $h->{count};
		fail("histogram $fam\{$sk}: no _sum") unless defined $h->{sum};
		fail("histogram $fam\{$sk}: +Inf bucket $last->[1], _count $h->{count}")
			unless $last->[1] == $h->{count};
	}
}
print "$_\n" for @out;
