// Hardhat Network for the devnet and the tests (adapters/evm/nodes.py starts it). Hardhat reads
// network settings only from a config file inside the project, so the chain id, the block time
// and where hardhat may write come from the environment.
const env = process.env;
const dir = env.ISLANDS_HARDHAT_DIR || require("node:os").tmpdir();
const interval = Number(env.ISLANDS_HARDHAT_BLOCK_TIME_MS || 0);

module.exports = {
  // Nothing to compile: the contracts are built by build.mjs with solcjs.
  paths: { sources: `${dir}/sources`, cache: `${dir}/cache`, artifacts: `${dir}/artifacts` },
  networks: {
    hardhat: {
      chainId: Number(env.ISLANDS_HARDHAT_CHAIN_ID || 31337),
      // Prague, not Hardhat 2.29's default Osaka: under Osaka its gas estimator tries more gas
      // than EIP-7825 lets a transaction use when a call inside fails (a delivery whose
      // recipient reverts), and refuses its own try ("greater than the cap (16777216)").
      hardfork: "prague",
      // a block per transaction, or one every `interval` ms
      mining: { auto: interval === 0, interval },
      accounts: {
        mnemonic: "test test test test test test test test test test test junk",
        count: 10,
        accountsBalance: "10000000000000000000000",
      },
    },
  },
};
