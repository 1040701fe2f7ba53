"""The pure Merkle module against published RFC 6962 test vectors.

Vectors copied from transparency-dev/merkle (Apache-2.0), the reference Go implementation
that Trillian and Certificate Transparency use: ``testonly/constants.go`` (leaf inputs,
node hashes of every complete subtree, roots for sizes 0..8) and ``proof/verify_test.go``
(inclusion and consistency proofs of the same 8-leaf tree, with its corruption probes).
"""

from __future__ import annotations

import pytest

from quanyu.ledger import merkle

LEAF_INPUTS = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
               "606162636465666768696a6b6c6d6e6f"]  # fmt: skip
NODE_HASHES = [
    ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
     "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
     "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
     "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
     "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
     "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
     "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"],
    ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
     "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"],
    ["d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]  # fmt: skip
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, proof): verify_test.go numbers leaves from 1; these are 0-based.
INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")

LEAVES = [merkle.leaf_hash(bytes.fromhex(x)) for x in LEAF_INPUTS]


def _hashes(proof: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in proof]


def _subtree(height: int, index: int) -> bytes:
    return merkle.perfect_root(LEAVES[index << height : (index + 1) << height])


def test_leaf_and_node_hashes_match_the_reference() -> None:
    for height, row in enumerate(NODE_HASHES):
        assert [_subtree(height, i).hex() for i in range(len(row))] == row


@pytest.mark.parametrize("size", range(9))
def test_roots_match_the_reference(size: int) -> None:
    assert merkle.mth(LEAVES[:size]).hex() == ROOTS[size]
    assert merkle.fold([_subtree(h, i) for h, i in merkle.root_pieces(size)]).hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vectors(index: int, size: int, proof: list[str]) -> None:
    ranges = merkle.inclusion_ranges(index, size)
    assert [merkle.mth(LEAVES[lo:hi]).hex() for lo, hi in ranges] == proof
    root, hashes = bytes.fromhex(ROOTS[size]), _hashes(proof)
    merkle.verify_inclusion(LEAVES[index], index, size, hashes, root)
    probes = [  # verify_test.go corruptInclusionProof
        (index - 1, size, root, LEAVES[index], hashes),
        (index + 1, size, root, LEAVES[index], hashes),
        (index ^ 2, size, root, LEAVES[index], hashes),
        (index, size * 2, root, LEAVES[index], hashes),
        (index, size // 2, root, LEAVES[index], hashes),
        (index, size, root, merkle.leaf_hash(b"WrongLeaf"), hashes),
        (index, size, bytes.fromhex(ROOTS[0]), LEAVES[index], hashes),
        (index, size, SOME_HASH, LEAVES[index], hashes),
        (index, size, root, LEAVES[index], [*hashes, root]),
        (index, size, root, LEAVES[index], [root, *hashes]),
        (index, size, root, LEAVES[index], hashes[:-1]),
        (index, size, root, LEAVES[index], [hashes[0], SOME_HASH, *hashes[1:]]),
    ]
    for i in range(len(hashes)):
        flipped = list(hashes)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        probes.append((index, size, root, LEAVES[index], flipped))
    for p_index, p_size, p_root, p_leaf, p_proof in probes:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(p_leaf, p_index, p_size, p_proof, p_root)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_vectors(old: int, new: int, proof: list[str]) -> None:
    ranges = merkle.consistency_ranges(old, new)
    assert [merkle.mth(LEAVES[lo:hi]).hex() for lo, hi in ranges] == proof
    r1, r2, hashes = bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), _hashes(proof)
    merkle.verify_consistency(old, new, r1, r2, hashes)
    if not hashes:
        return
    probes = [  # verify_test.go corruptConsistencyProof
        (old - 1, new, r1, r2, hashes), (old + 1, new, r1, r2, hashes),
        (old ^ 2, new, r1, r2, hashes), (old, new * 2, r1, r2, hashes),
        (old, new // 2, r1, r2, hashes), (old, new, SOME_HASH, r2, hashes),
        (old, new, r1, SOME_HASH, hashes), (old, new, r2, r1, hashes),
        (old, new, r1, r2, []), (old, new, r1, r2, [*hashes, r1]),
        (old, new, r1, r2, [*hashes, r2]), (old, new, r1, r2, [r1, *hashes]),
        (old, new, r1, r2, [r2, *hashes]), (old, new, r1, r2, [hashes[0], *hashes]),
        (old, new, r1, r2, hashes[:-1]),
    ]  # fmt: skip
    for i in range(len(hashes)):
        flipped = list(hashes)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        probes.append((old, new, r1, r2, flipped))
    for p_old, p_new, p_r1, p_r2, p_proof in probes:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(p_old, p_new, p_r1, p_r2, p_proof)


def test_consistency_edge_cases_follow_the_reference() -> None:
    empty = bytes.fromhex(ROOTS[0])
    r1, r2 = merkle.leaf_hash(b"1"), merkle.leaf_hash(b"2")
    merkle.verify_consistency(0, 0, empty, empty, [])
    merkle.verify_consistency(0, 1, r1, r2, [])  # the empty tree precedes every tree
    merkle.verify_consistency(1, 1, r2, r2, [])
    for old, new, a, b, proof in [
        (1, 1, r1, r2, []),  # a fork: same size, different roots
        (1, 0, r1, r2, []),  # time travel
        (2, 1, r1, r2, []),
        (1, 2, r1, r2, []),  # an empty proof for a real extension
        (0, 0, empty, empty, [empty]),  # roots match but the proof is not empty
        (1, 1, empty, empty, [empty]),
    ]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(old, new, a, b, proof)


def test_single_leaf_and_bad_lengths() -> None:
    leaf = merkle.leaf_hash(b"data")
    merkle.verify_inclusion(leaf, 0, 1, [], leaf)
    for args in [(leaf, 0, 1, [], b""), (b"", 0, 1, [], leaf), (leaf, 0, 0, [], leaf),
                 (leaf, 2, 1, [], leaf), (leaf, 1, 0, [], leaf)]:  # fmt: skip
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*args)
