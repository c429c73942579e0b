// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {WrappedBTC} from "./WrappedBTC.sol";

/// @title The EVM end of the tssnode Bitcoin bridge (a RenVM-style gateway)
/// @notice Mints wrapped BTC for a Bitcoin deposit when the group's threshold key (the mint
/// authority) has signed the mint, and burns it to ask the group to release BTC.
/// @dev The hashes are RenVM's (tssnode/bridge/hashes.py computes the same ones):
///   sHash   = keccak256("BTC/to" ‖ chainName)
///   sigHash = keccak256(abi.encode(pHash, amount, sHash, to, nHash, chainid, gateway))
/// DEVIATION from RenVM: its sigHash bound neither the chain id nor the gateway, so one
/// authorisation could be replayed on another chain or another deployment; this one binds
/// both. The digest is signed as it is (no "\x19Ethereum Signed Message" prefix): the group
/// signs the 32 bytes the bridge computed, and a prefix would only hide what was signed.
contract BridgeGateway {
    /// @notice Longest Bitcoin address a burn may name: BIP-173 caps a bech32 string at 90.
    uint256 public constant MAX_BURN_TO_LENGTH = 90;

    /// @notice The wrapped BTC this gateway alone mints and burns (created by it).
    WrappedBTC public immutable token;
    /// @notice keccak256("BTC/to" ‖ chainName): the selector bound into every mint.
    bytes32 public immutable sHash;
    /// @notice The smallest burn, in satoshis: a release must pay its own Bitcoin fee and
    /// leave an output above dust.
    uint256 public immutable minimumBurn;

    /// @notice The address of the key whose signature authorises mints (the group's key).
    address public mintAuthority;
    /// @notice Bound into the rotation digest, so a rotation signature works once.
    uint256 public rotationNonce;
    /// @notice The nonce the next burn is logged with (0, 1, 2, ...).
    uint256 public nextBurnNonce;
    /// @notice Deposit outputs already minted for (RenVM's `status[nHash]`).
    mapping(bytes32 nHash => bool) public nHashSpent;
    /// @notice Signatures' digests already used.
    mapping(bytes32 sigHash => bool) public sigHashSpent;

    event LogMint(address indexed to, uint256 amount, bytes32 indexed nHash, bytes32 sigHash);
    /// @param to the Bitcoin address to release to, as its string's bytes (e.g. "bcrt1q...")
    event LogBurn(bytes to, uint256 amount, uint256 indexed burnNonce, address indexed from);
    event LogAuthorityRotated(
        address indexed previousAuthority, address indexed newAuthority, uint256 rotationNonce
    );

    /// @notice A zero authority: ecrecover's failure value, and nobody's key.
    error ZeroAuthority();
    /// @notice A zero minimum would let a burn ask for a Bitcoin output no one can make.
    error ZeroMinimumBurn();
    /// @notice This deposit output has been minted for already.
    error NHashSpent(bytes32 nHash);
    /// @notice This signature's digest has been used already.
    error SigHashSpent(bytes32 sigHash);
    /// @notice A valid signature, but by `signer`, not the mint authority.
    error NotAuthority(address signer);
    /// @notice A burn below `minimumBurn`.
    error BurnTooSmall(uint256 amount, uint256 minimum);
    /// @notice A burn's Bitcoin address is empty or longer than MAX_BURN_TO_LENGTH.
    error BadBurnAddress(uint256 length);

    /// @param mintAuthority_ the group key's Ethereum address
    /// @param chainName this chain's name in sHash, e.g. "Ethereum"
    /// @param minimumBurn_ the smallest burn, in satoshis
    constructor(address mintAuthority_, string memory chainName, uint256 minimumBurn_) {
        if (mintAuthority_ == address(0)) revert ZeroAuthority();
        if (minimumBurn_ == 0) revert ZeroMinimumBurn();
        mintAuthority = mintAuthority_;
        sHash = keccak256(abi.encodePacked("BTC/to", chainName));
        minimumBurn = minimumBurn_;
        token = new WrappedBTC(address(this));
    }

    /// @notice The digest the mint authority signs to mint `amount` to `to` for the deposit
    /// output `nHash` (made with payload hash `pHash`), on this chain and this gateway.
    function hashForSignature(bytes32 pHash, uint256 amount, address to, bytes32 nHash)
        public
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(pHash, amount, sHash, to, nHash, block.chainid, address(this)));
    }

    /// @notice Mints `amount` to `to` for one Bitcoin deposit output, with the authority's
    /// signature `sig` (65 bytes r ‖ s ‖ v, low s) over `hashForSignature(...)`.
    /// @dev Anyone may submit it: `to` is inside the signed digest, so a relayer cannot
    /// redirect the mint.
    function mint(bytes32 pHash, uint256 amount, address to, bytes32 nHash, bytes calldata sig)
        external
    {
        bytes32 sigHash = hashForSignature(pHash, amount, to, nHash);
        // One deposit output mints once, whatever amount or recipient another signature names.
        if (nHashSpent[nHash]) revert NHashSpent(nHash);
        // And one signature works once (RenVM keeps both maps; either alone stops a replay
        // of this digest, the pair keeps both records queryable).
        if (sigHashSpent[sigHash]) revert SigHashSpent(sigHash);
        _requireAuthority(sigHash, sig);
        nHashSpent[nHash] = true;
        sigHashSpent[sigHash] = true;
        token.mint(to, amount);
        emit LogMint(to, amount, nHash, sigHash);
    }

    /// @notice Burns `amount` of the caller's tokens and asks the group to release as many
    /// satoshis (less the Bitcoin fee) to the Bitcoin address `to`.
    /// @param to the Bitcoin address as its string's bytes (e.g. bytes("bc1q...")), not a
    /// script: the nodes decode and check it before they build the release.
    function burn(bytes calldata to, uint256 amount) external returns (uint256 burnNonce) {
        // A release below this cannot pay its fee and an output above dust.
        if (amount < minimumBurn) revert BurnTooSmall(amount, minimumBurn);
        // Every Bitcoin address string is 1 to 90 characters; a longer one would only make
        // the nodes store and parse junk.
        if (to.length == 0 || to.length > MAX_BURN_TO_LENGTH) revert BadBurnAddress(to.length);
        token.burn(msg.sender, amount);
        burnNonce = nextBurnNonce++;
        emit LogBurn(to, amount, burnNonce, msg.sender);
    }

    /// @notice The digest the current authority signs to hand minting to `newAuthority`.
    /// @dev Bound to the rotation nonce (a rotation signature works once, so an old one
    /// cannot undo a later rotation), the chain id and this gateway (as sigHash is).
    function hashForRotation(address newAuthority) public view returns (bytes32) {
        return keccak256(
            abi.encode("tssnode.rotate", newAuthority, rotationNonce, block.chainid, address(this))
        );
    }

    /// @notice Makes `newAuthority` the mint authority, with the current one's signature
    /// over `hashForRotation(newAuthority)` (after a reshare or a key change).
    function rotateAuthority(address newAuthority, bytes calldata sig) external {
        // Zero is ecrecover's failure value and nobody's key: minting would stop for good.
        if (newAuthority == address(0)) revert ZeroAuthority();
        _requireAuthority(hashForRotation(newAuthority), sig);
        address previous = mintAuthority;
        mintAuthority = newAuthority;
        emit LogAuthorityRotated(previous, newAuthority, rotationNonce++);
    }

    /// @dev OpenZeppelin's ECDSA.recover refuses a high s (the malleable twin of a valid
    /// signature), a v other than 27/28, a length other than 65 and a failed recovery, so
    /// only the signer it returns is left to check.
    function _requireAuthority(bytes32 digest, bytes calldata sig) private view {
        address signer = ECDSA.recover(digest, sig);
        if (signer != mintAuthority) revert NotAuthority(signer);
    }
}
