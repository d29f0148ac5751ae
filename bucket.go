package fiat

// Buckets is how many buckets user keys fall into: a percentage is kept to
// a hundredth of a percent.
const Buckets = 10000

// Bucket is the bucket in [0, Buckets) that userKey falls into for seed (a
// flag's name, a rollout's id). It is the same on every node and in every
// release, so a user stays in a percentage as it rises: a user is in
// percent p when Bucket < p*Buckets/100, and raising p only adds users, as
// Unleash and flagd do. Different seeds spread the same users differently,
// so one flag's 10% is not another's.
func Bucket(seed, userKey string) uint32 {
	// FNV-1a over seed, a NUL no name holds, and the key; inlined so that
	// a request pays no allocation for it.
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	for i := 0; i < len(seed); i++ {
		h = (h ^ uint64(seed[i])) * prime64
	}
	h *= prime64 // the NUL separator
	for i := 0; i < len(userKey); i++ {
		h = (h ^ uint64(userKey[i])) * prime64
	}
	// FNV's low bits mix poorly for short, similar keys: fold the high
	// half in before taking the bucket.
	h ^= h >> 32
	h *= 0x9e3779b97f4a7c15
	h ^= h >> 29
	return uint32(h % Buckets)
}

// InPercent reports whether userKey is within percent (0 to 100, in steps
// of 0.01) of seed's users.
func InPercent(seed, userKey string, percent float64) bool {
	return float64(Bucket(seed, userKey)) < percent*Buckets/100
}
