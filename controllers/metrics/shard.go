package metrics

// ShardInfo names the shard an instance serves.
const ShardInfo = "vidra_shard_info"

// RegisterShard reports the -watch-label-selector of this instance ("" for
// an unsharded one) in vidra_shard_info, so the series of each shard's
// process can be told apart.
func RegisterShard(r *Registry, selector string) {
	r.NewGaugeVec(ShardInfo, "Label selector of the InfrahubSyncs this instance handles (\"\": all); the value is always 1.", "selector").With(selector).Set(1)
}
