"""Anti-spam layer 1 without a network: entries as the operator writes them, how they match, the
connection rate's bucket, DNSBL query names."""

import ipaddress

import pytest

from dizimail.model.errors import InvalidInput
from dizimail.services.access import _Matcher, client_address, display_pattern, parse_pattern, split_sender
from dizimail.services.dnsbl import query_name
from dizimail.services.limits import ConnectionRate


@pytest.mark.parametrize(("text", "normal"), [
    ("192.0.2.7", "192.0.2.7"), ("192.0.2.7/32", "192.0.2.7"), ("198.51.100.9/24", "198.51.100.0/24"),
    ("2001:DB8::1/64", "2001:db8::/64"), ("@USA.com", "@usa.com"), ("*@usa.com", "@usa.com"),
    ("Spam@USA.com.", "spam@usa.com"), ("*.Usa.Com", "*.usa.com"), ("@电力.cn", "@xn--tfr181f.cn"),
    ("张三@电力.cn", "张三@xn--tfr181f.cn"),
])
def test_entries_are_normalised(text, normal):
    assert parse_pattern(text) == normal


@pytest.mark.parametrize(("text", "why"), [
    ("usa.com", "write @usa.com"), ("0.0.0.0/0", "whole Internet"), ("::/0", "whole Internet"),
    ("spam*@usa.com", "wildcards are"), ("a b@usa.com", "wildcards are"), ("@usa..com", "not a valid domain"),
    ("@-usa.com", "not a valid domain"), ("*.", "not a valid domain"), ("hello", "not an address"),
    ("300.1.1.1", "not an address"), ("", "empty"),
])
def test_bad_entries_say_why(text, why):
    with pytest.raises(InvalidInput) as caught:
        parse_pattern(text)
    assert why in caught.value.detail


def matcher(*patterns: str) -> _Matcher:
    m = _Matcher()
    for p in patterns:
        m.add(parse_pattern(p))
    return m


def test_domain_sender_and_subdomain_patterns():
    m = matcher("@usa.com", "spam@other.com", "*.sub.com")
    assert m.sender(split_sender("Bob@USA.com")) == "@usa.com"
    assert m.sender(split_sender("bob@mail.usa.com")) is None  # @usa.com is the domain, not its subdomains
    assert m.sender(split_sender("SPAM@other.com")) == "spam@other.com"
    assert m.sender(split_sender("ham@other.com")) is None
    assert m.sender(split_sender("x@a.sub.com")) == "*.sub.com"
    assert m.sender(split_sender("x@a.b.sub.com")) == "*.sub.com"
    assert m.sender(split_sender("x@sub.com")) is None  # *.sub.com: the subdomains only
    assert m.sender(split_sender("x@notsub.com")) is None
    assert m.sender(split_sender("")) is None  # the null sender is nobody


def test_internationalised_domains_match_in_either_form():
    m = matcher("@电力.cn")
    assert m.sender(split_sender("user@电力.cn")) == "@xn--tfr181f.cn"
    assert m.sender(split_sender("user@XN--TFR181F.CN")) == "@xn--tfr181f.cn"
    assert display_pattern("@xn--tfr181f.cn") == "@电力.cn" and display_pattern("*.xn--tfr181f.cn") == "*.电力.cn"


def test_networks_match_by_prefix_v4_v6_and_mapped():
    m = matcher("198.51.100.0/24", "192.0.2.7", "2001:db8::/32")
    assert m.ip(client_address("198.51.100.200")) == "198.51.100.0/24"
    assert m.ip(client_address("198.51.101.1")) is None
    assert m.ip(client_address("192.0.2.7")) == "192.0.2.7"
    assert m.ip(client_address("192.0.2.8")) is None
    assert m.ip(client_address("::ffff:198.51.100.3")) == "198.51.100.0/24"  # IPv4-mapped: the IPv4 address
    assert m.ip(client_address("2001:db8:1::5")) == "2001:db8::/32"
    assert m.ip(client_address("2001:db9::5")) is None
    assert m.ip(client_address("not an address")) is None


def test_a_large_list_costs_a_probe_per_prefix_length():
    m = matcher(*(f"10.{i // 256}.{i % 256}.0/24" for i in range(20_000)))
    assert len(m.networks) == 1 and m.ip(client_address("10.78.31.9")) == "10.78.31.0/24"


def test_connection_rate_bucket():
    rate = ConnectionRate(per_minute=3)
    assert [rate.take("192.0.2.1", 0.0) for _ in range(4)] == [True, True, True, False]
    assert rate.take("192.0.2.2", 0.0)  # another client has its own bucket
    assert not rate.take("192.0.2.1", 10.0)  # a token comes back every 20 s
    assert rate.take("192.0.2.1", 20.5)
    assert rate.take("2001:db8::1", 0.0) and rate.take("2001:db8::2", 0.0) and rate.take("2001:db8::3", 0.0)
    assert not rate.take("2001:db8::4", 0.0)  # an IPv6 /64 is one client
    assert ConnectionRate(per_minute=0).take("192.0.2.1", 0.0)  # 0: no limit


def test_connection_rate_table_stays_bounded():
    rate = ConnectionRate(per_minute=2, max_clients=100)
    for i in range(1000):
        rate.take(f"10.0.{i // 256}.{i % 256}", float(i))
    assert len(rate._buckets) <= 100


def test_dnsbl_query_names():
    assert query_name(ipaddress.ip_address("192.0.2.99"), "zen.spamhaus.org") == "99.2.0.192.zen.spamhaus.org"
    name = query_name(ipaddress.ip_address("2001:db8:1:2:3:4:567:89ab"), "bl.test.")
    assert name == "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test"
