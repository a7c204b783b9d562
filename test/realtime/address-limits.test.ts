import t from 'tap'
import { limitedAddress } from '../../src/realtime/address-limits.js'

t.test('the per-address limits count IPv4 addresses one by one and IPv6 ones by their /64', async (t) => {
  t.equal(limitedAddress('203.0.113.7'), '203.0.113.7')
  t.equal(limitedAddress('::ffff:203.0.113.7'), '::ffff:203.0.113.7', 'IPv4 seen by a dual-stack server')
  t.equal(limitedAddress('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64')
  t.equal(limitedAddress('2001:db8:1:2::1'), '2001:db8:1:2::/64', 'two addresses of one /64 share a budget')
  t.equal(limitedAddress('2001:DB8:0001:0002:0:0:0:ffff'), '2001:db8:1:2::/64', 'written any way')
  t.equal(limitedAddress('2001:db8::1'), '2001:db8:0:0::/64')
  t.equal(limitedAddress('fe80::1%eth0'), 'fe80:0:0:0::/64', 'the zone is not part of the address')
  t.equal(limitedAddress('::1'), '0:0:0:0::/64')
  t.not(limitedAddress('2001:db8:1:3::1'), limitedAddress('2001:db8:1:2::1'), 'another /64 is another client')
  t.equal(limitedAddress('unknown'), 'unknown')
  t.equal(limitedAddress('not:an:address::zz'), 'not:an:address::zz', 'anything unparsable counts as itself')
})
